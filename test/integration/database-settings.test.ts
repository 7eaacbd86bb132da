/**
 * The broker's connections to PostgreSQL run without JIT compiling (PoolOptions.jit): every
 * connection of the pool, including ones opened while others are busy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../registry/store/db.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';

describe.skipIf(backend !== 'postgresql')('the broker\'s PostgreSQL sessions (postgresql)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.close());

  it('every pooled connection has jit off, and the SET is not counted as a statement of the caller', async () => {
    const before = db.statements.length;
    // Five transactions held at once: five connections.
    const settings = await Promise.all(Array.from({ length: 5 }, () => withTransaction(db.pool, async (c) => {
      const jit = (await c.query<{ jit: string }>('SHOW jit')).rows[0].jit;
      await c.query('SELECT pg_sleep(0.05)');
      return jit;
    })));
    expect(settings).toEqual(['off', 'off', 'off', 'off', 'off']);
    expect(db.statements.slice(before).some((s) => /jit = off/.test(s))).toBe(false);
  });
});
