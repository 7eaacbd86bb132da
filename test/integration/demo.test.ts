/**
 * `constellation demo` end to end at a small scale: two simulated centres, a real broker process,
 * three cross-matches through the public API, every pair checked against the truth.
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../demo/run-demo.js';
import { CHILD_PATIENCE_MS } from '../support/wait.js';

describe('constellation demo', () => {
  it('finds every true pair and no other through the broker, printing each strategy and what moved', async () => {
    const lines: string[] = [];
    const code = await runDemo({ scale: 0.02, print: (line) => lines.push(line) });
    const text = lines.join('\n');
    expect(code, text).toBe(0);
    expect(text).toMatch(/→ (SAME_SITE|UPLOAD|BROKER)/);
    expect(text).toMatch(/not eligible: no site holds both datasets/);
    expect(text).toMatch(/Recall 1\.0000, precision 1\.0000/);
    for (const region of ['the 10°×10° patch', 'the patch across RA 0/360', 'the polar cap']) expect(text).toContain(`Cross-match in ${region}`);
  }, 2 * CHILD_PATIENCE_MS);
});
