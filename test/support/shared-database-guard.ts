/**
 * Vitest global setup: the suite must never write to the database DATABASE_URL names (a
 * user's, or CI's shared `test`). Each test works in a database of its own (freshDatabase);
 * a child process that inherited DATABASE_URL would migrate and seed the shared one instead,
 * silently. This counts the shared database's migrations before the run and fails the run
 * when the count changed after it.
 */
import pg from 'pg';

async function migrationsApplied(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const table = await client.query<{ found: string | null }>(`SELECT to_regclass('constellation_migrations') AS found`);
    if (!table.rows[0]?.found) return 0;
    return (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM constellation_migrations')).rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  const url = process.env.DATABASE_URL;
  if (!url) return undefined;
  const before = await migrationsApplied(url);
  return async () => {
    const after = await migrationsApplied(url);
    if (after !== before) {
      // Vitest reports an error thrown here but still exits 0: the exit code is set too.
      process.exitCode = 1;
      throw new Error(`the suite migrated the shared database DATABASE_URL names (${before} → ${after} migrations applied): some test let a child process inherit DATABASE_URL instead of passing its own fresh database`);
    }
  };
}
