import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous: property tests and CLI children are CPU-bound, and a loaded 2-core machine runs
    // them several times slower (60 s timed out under stress-ng beside a second suite).
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // Integration files each start servers and databases; two cores run two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
    // Every file's broker log lines are checked for the secrets its tests handled.
    setupFiles: ['test/support/no-secrets-in-logs.ts'],
    // The database DATABASE_URL names is left as the suite found it (each test makes its own).
    globalSetup: ['test/support/shared-database-guard.ts'],
  },
});
