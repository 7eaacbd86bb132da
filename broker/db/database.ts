/** Opening the broker's database: DATABASE_URL when given, else the embedded PGlite. */
import type pg from 'pg';
import { createPool } from '../../registry/store/db.js';
import { startEmbeddedDatabase } from './embedded.js';

export interface Database {
  pool: pg.Pool;
  kind: 'postgresql' | 'embedded';
  close(): Promise<void>;
}

/** Connect to `url`, or start/join the embedded database under `dataDir`. */
export async function openDatabase(
  settings: { url?: string; dataDir: string },
  options: { onQuery?: (sql: string) => void; max?: number } = {},
): Promise<Database> {
  if (settings.url) {
    const pool = createPool(settings.url, options);
    return { pool, kind: 'postgresql', close: () => pool.end() };
  }
  const embedded = await startEmbeddedDatabase(settings.dataDir);
  const pool = createPool(embedded.url, { ...options, wrapStatements: true });
  return {
    pool,
    kind: 'embedded',
    close: async () => {
      await pool.end();
      await embedded.close();
    },
  };
}
