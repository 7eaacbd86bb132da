/**
 * The one follower of the registry version: a view is brought up to date, a failing database is
 * reported once (not at every interval) and its recovery once, and stopping stops it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlannerView } from '../../broker/planner/view.js';
import { CoverageView } from '../../broker/services/coverage-view.js';
import { followRegistry } from '../../broker/services/registry-follower.js';
import { migrate } from '../../registry/store/migrate.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

describe(`following the registry (${backend})`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase({ recordStatements: false });
    await migrate(db.pool);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('refreshes the views, reports a failure once and its end once', async () => {
    const coverage = new CoverageView();
    const view = new PlannerView(undefined, coverage);
    const errors: unknown[] = [];
    let recovered = 0;
    const stop = followRegistry(db.pool, view, 20, { onError: (err) => errors.push(err), onRecovered: () => recovered++ });
    try {
      await waitUntil(async () => view.version, (v) => v >= 0, { describe: (v) => `view still at version ${v}` });
      await db.pool.query('ALTER TABLE registry_state RENAME TO registry_state_away');
      await waitUntil(async () => errors.length, (n) => n >= 1, { describe: () => 'no failure reported' });
      // Many intervals later, still one report.
      await sleep(500);
      expect(errors).toHaveLength(1);
      expect(recovered).toBe(0);
      await db.pool.query('ALTER TABLE registry_state_away RENAME TO registry_state');
      await waitUntil(async () => recovered, (n) => n >= 1, { describe: () => 'recovery not reported' });
      await db.pool.query('UPDATE registry_state SET version = version + 1');
      const bumped = (await db.pool.query<{ version: number }>('SELECT version FROM registry_state')).rows[0].version;
      await waitUntil(async () => view.version, (v) => v === bumped, { describe: (v) => `view at ${v}, registry at ${bumped}` });
      // The coverage index follows the planner's snapshot: one load, one version.
      expect(coverage.version).toBe(bumped);
    } finally {
      stop();
    }
    expect(errors).toHaveLength(1);
    expect(recovered).toBe(1);
  }, WAITING_TEST_MS);
});
