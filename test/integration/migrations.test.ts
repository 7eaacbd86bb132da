import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../broker/db/database.js';
import { loadMigrations, pendingMigrations } from '../../registry/store/migrate.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { runCli } from '../support/cli.js';

describe(`migrations (${backend})`, () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup) await c();
  });

  it('two processes migrating the same database at once apply each migration exactly once', async () => {
    let env: Record<string, string | undefined>;
    let inspect: () => Promise<TestDatabase | Awaited<ReturnType<typeof openDatabase>>>;
    if (process.env.DATABASE_URL) {
      const db = await freshDatabase();
      cleanup.push(() => db.close());
      env = { DATABASE_URL: db.url };
      inspect = async () => db;
    } else {
      // Both processes share one embedded data directory: one hosts it, the other joins.
      const dataDir = await mkdtemp(join(tmpdir(), 'constellation-mig-'));
      cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
      env = { DATABASE_URL: '', CONSTELLATION_DATA: dataDir };
      inspect = async () => {
        const db = await openDatabase({ dataDir });
        cleanup.unshift(() => db.close());
        return db;
      };
    }
    const [a, b] = await Promise.all([runCli(['migrate'], env), runCli(['migrate'], env)]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    const shipped = await loadMigrations();
    // Exactly one of them applied the migrations; the other found the database current.
    expect([a.stdout, b.stdout].filter((o) => o.startsWith('applied:'))).toHaveLength(1);
    expect([a.stdout, b.stdout].filter((o) => o.includes('up to date'))).toHaveLength(1);
    const db = await inspect();
    const rows = (await db.pool.query<{ version: number; n: number }>('SELECT version, count(*)::int AS n FROM constellation_migrations GROUP BY version ORDER BY version')).rows;
    expect(rows).toEqual(shipped.map((m) => ({ version: m.version, n: 1 })));
    expect(await pendingMigrations(db.pool)).toEqual([]);
  });
});
