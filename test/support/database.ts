/**
 * A fresh, empty database for one test file: a new database on the PostgreSQL server named
 * by DATABASE_URL when it is set, otherwise an embedded PGlite in a temporary directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase, type Database } from '../../broker/db/database.js';
import type { EmbeddedHost } from '../../broker/db/embedded.js';

export interface TestDatabase extends Database {
  /** Connection URL of this test database (to hand to a child process). */
  url: string | undefined;
  /** Embedded data directory, when embedded. */
  dataDir: string;
  /** Every SQL statement text run through the pool, for statement-count assertions. */
  statements: string[];
}

/** Which backend the suite runs on, for test names. */
export const backend = process.env.DATABASE_URL ? 'postgresql' : 'pglite';

/** Create a fresh database; `close()` drops it. Benches pass `recordStatements: false`, so nothing is kept per statement. */
export async function freshDatabase(options: { recordStatements?: boolean; embeddedHost?: EmbeddedHost } = {}): Promise<TestDatabase> {
  const statements: string[] = [];
  const onQuery = options.recordStatements === false ? undefined : (s: string) => statements.push(s);
  const dataDir = await mkdtemp(join(tmpdir(), 'constellation-test-'));
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const db = await openDatabase({ dataDir }, { onQuery, embeddedHost: options.embeddedHost });
    return {
      ...db,
      url: undefined,
      dataDir,
      statements,
      close: async () => {
        await db.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `constellation_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.toString(), dataDir }, { onQuery });
  return {
    ...db,
    url: url.toString(),
    dataDir,
    statements,
    close: async () => {
      await db.close();
      const drop = new pg.Client({ connectionString: serverUrl });
      await drop.connect();
      await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await drop.end();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
