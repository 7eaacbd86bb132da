/** Plain numbered SQL migrations, applied once even when several brokers start together. */
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { packagePath } from '../paths.js';
import { withTransaction, type Queryable } from './db.js';

// Arbitrary constant shared by every broker: the advisory lock that serialises migrators.
const MIGRATION_LOCK = 7_240_815_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations shipped with this build, in order. */
export async function loadMigrations(): Promise<Migration[]> {
  const dir = packagePath('registry/store/migrations');
  const files = (await readdir(dir)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (f) => ({ version: Number(f.slice(0, 3)), name: f.replace(/\.sql$/, ''), sql: await readFile(`${dir}/${f}`, 'utf8') })),
  );
}

/**
 * Apply every pending migration in one transaction under a transaction-scoped advisory lock:
 * a second broker waits for the first, then finds nothing left to do.
 */
export async function migrate(pool: pg.Pool): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations();
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS constellation_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM constellation_migrations')).rows.map((r) => r.version));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO constellation_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.name);
    }
    return { applied };
  });
}

/** Names of shipped migrations the database has not applied (empty when current). */
export async function pendingMigrations(db: Queryable): Promise<string[]> {
  const migrations = await loadMigrations();
  const exists = await db.query<{ t: string | null }>("SELECT to_regclass('constellation_migrations')::text AS t");
  if (!exists.rows[0]?.t) return migrations.map((m) => m.name);
  const done = new Set((await db.query<{ version: number }>('SELECT version FROM constellation_migrations')).rows.map((r) => r.version));
  return migrations.filter((m) => !done.has(m.version)).map((m) => m.name);
}
