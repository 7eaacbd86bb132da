import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../registry/store/migrate.js';
import { publishDocument } from '../../registry/store/publish.js';
import { recordSiteHealth } from '../../registry/store/queries/harvest.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

// A harvest recording a site's health and a publish of the same site take the site's row and the
// registry version: always in that order, or the two wait on each other (40P01 on PostgreSQL).

describe(`a site's health changing while it publishes (${backend})`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase({ recordStatements: false });
    await migrate(db.pool);
  });
  afterAll(() => db?.close());

  it('never deadlocks, and every status change is a new registry version', async () => {
    const doc = (n: number) => documentFor('flap', [{ id: 'cat.t', table: 'local.t', rows: n, coverage: '0/0-11' }]);
    await publishDocument(db.pool, doc(0), 'publish');
    for (let round = 1; round <= 60; round++) {
      const before = (await db.pool.query<{ version: number }>('SELECT version FROM registry_state')).rows[0].version;
      // Failing once from UP is DEGRADED (a status change); succeeding brings it back UP.
      const results = await Promise.allSettled([
        publishDocument(db.pool, doc(round), 'publish'),
        recordSiteHealth(db.pool, 'flap', round % 2 === 0, 3),
        publishDocument(db.pool, doc(round + 1000), 'publish'),
      ]);
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failed, `round ${round}`).toEqual([]);
      const after = (await db.pool.query<{ version: number }>('SELECT version FROM registry_state')).rows[0].version;
      // Two publishes and one status change (odd rounds fail from UP, even ones recover).
      expect(after - before, `round ${round}`).toBe(3);
    }
  }, 120_000);
});
