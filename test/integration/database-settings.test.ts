/**
 * The broker's connections to PostgreSQL run without JIT compiling (PoolOptions.jit): every
 * connection of the pool, including ones opened while others are busy. A connection the server
 * ends while it is checked out (a restart, an administrator, a failover) fails its holder with
 * DATABASE and never crashes the process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTransaction } from '../../registry/store/db.js';
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

  it('fails the holder of a connection the server terminates with DATABASE, without an uncaught error, and carries on', async () => {
    if (db.url === undefined) throw new Error('a PostgreSQL test database has a URL');
    const pool = createPool(db.url, { jit: false, max: 2 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      for (const whileRunning of [false, true]) {
        const attempt = withTransaction(pool, async (c) => {
          const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
          // Terminated between two statements, or during one.
          const terminate = db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
          if (whileRunning) await c.query('SELECT pg_sleep(30)');
          await terminate;
          await waitFor(async () => (await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0);
          await c.query('SELECT 1');
        });
        await expect(attempt).rejects.toMatchObject({ code: 'CONSTELLATION_E_DATABASE' });
      }
      // The broken clients were dropped, not handed out again.
      expect(await withTransaction(pool, async (c) => (await c.query<{ x: number }>('SELECT 2 AS x')).rows[0].x)).toBe(2);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
    }
  });
});

/** Poll `check` until it holds (the server ends a terminated backend asynchronously). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600 && !(await check()); i++) await new Promise((r) => setTimeout(r, 50));
}
