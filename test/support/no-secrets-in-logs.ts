/** Setup file: after each test file, no line its brokers logged may contain a secret a test registered. */
import { afterAll, expect } from 'vitest';
import { linesWithSecrets } from './log-capture.js';

afterAll(() => {
  expect(linesWithSecrets(), 'log lines that carry a secret').toEqual([]);
});
