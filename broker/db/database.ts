/** Opening the broker's database: DATABASE_URL when given, else the embedded PGlite. */
import type pg from 'pg';
import { createPool } from '../../registry/store/db.js';
import { startEmbeddedDatabase, type EmbeddedHost } from './embedded.js';

/** How long a connection to the embedded server may take (see openDatabase). */
const EMBEDDED_CONNECT_TIMEOUT_MS = 120_000;

export interface Database {
  pool: pg.Pool;
  kind: 'postgresql' | 'embedded';
  close(): Promise<void>;
}

/** Connect to `url`, or start/join the embedded database under `dataDir`. */
export async function openDatabase(
  settings: { url?: string; dataDir: string },
  options: { onQuery?: (sql: string) => void; max?: number; embeddedHost?: EmbeddedHost } = {},
): Promise<Database> {
  const { embeddedHost, ...poolOptions } = options;
  if (settings.url) {
    // The broker's statements are short: JIT compiling costs more than it saves (see PoolOptions.jit).
    const pool = createPool(settings.url, { ...poolOptions, jit: false });
    return { pool, kind: 'postgresql', close: () => pool.end() };
  }
  const embedded = await startEmbeddedDatabase(settings.dataDir, { host: embeddedHost });
  // The embedded server runs PostgreSQL's work on its host's event loop: after a crash its
  // recovery, or a loaded machine, can keep a handshake waiting far longer than a remote
  // server would. The limit only guards against a server that is gone.
  const pool = createPool(embedded.url, { ...poolOptions, wrapStatements: true, connectTimeoutMs: EMBEDDED_CONNECT_TIMEOUT_MS });
  return {
    pool,
    kind: 'embedded',
    close: async () => {
      await pool.end();
      await embedded.close();
    },
  };
}
