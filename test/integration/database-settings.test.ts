/**
 * The broker's connections to PostgreSQL run without JIT compiling (PoolOptions.jit): every
 * connection of the pool, including ones opened while others are busy. A connection the server
 * ends while it is checked out (a restart, an administrator, a failover) fails its holder with
 * DATABASE and never crashes the process; the broker logs each lost connection once, as a warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, onConnectionLost, withTransaction } from '../../registry/store/db.js';
import { startBroker } from '../support/broker.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { capturedLines } from '../support/log-capture.js';
import { waitUntil } from '../support/wait.js';

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
    const lost: Error[] = [];
    const stopReporting = onConnectionLost(pool, (err) => lost.push(err));
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
          await waitUntil(async () => (await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount, (rows) => rows === 0, { describe: () => `backend ${pid} still running` });
          await c.query('SELECT 1');
        });
        await expect(attempt).rejects.toMatchObject({ code: 'CONSTELLATION_E_DATABASE' });
      }
      // The broken clients were dropped, not handed out again.
      expect(await withTransaction(pool, async (c) => (await c.query<{ x: number }>('SELECT 2 AS x')).rows[0].x)).toBe(2);
      expect(uncaught).toEqual([]);
      // Each lost connection was reported once, whether its loss came between statements or during one.
      await waitUntil(() => lost.length, (n) => n >= 2, { describe: (n) => `${n} of the 2 lost connections reported` });
      expect(lost).toHaveLength(2);
      stopReporting();
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
    }
  });

  it('the broker logs a connection the server ends as one warning, and goes on answering on a new one', async () => {
    const broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    try {
      const logged = () => capturedLines(/a database connection was lost/);
      const before = logged().length;
      // A connection of the broker's pool, idle once the transaction ends, ended by an administrator.
      const pid = await withTransaction(broker.db.pool, async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const lines = await waitUntil(logged, (l) => l.length > before, { describe: () => 'no log line for the lost connection' });
      expect(lines).toHaveLength(before + 1);
      const line = JSON.parse(lines[before]) as { level: number; err?: { code?: string } };
      expect(line.level).toBe(40);
      expect(line.err?.code).toBe('57P01');
      const { status, data, errors } = await broker.graphql<{ sites: unknown[] }>('{ sites { id } }');
      expect(status).toBe(200);
      expect(errors).toBeUndefined();
      expect(Array.isArray(data?.sites)).toBe(true);
    } finally {
      await broker.close();
    }
  });
});
