import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each start servers and databases; two cores run two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
