/**
 * The embedded default database: PGlite (PostgreSQL compiled to WASM) served over the
 * PostgreSQL wire protocol by pglite-socket, so the same `pg` code runs with no server
 * installed. Several broker processes on one data directory share the first one's server.
 */
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { ConstellationError } from '../../registry/model/errors.js';
import { copyTemplate } from './pglite-template.js';

export interface EmbeddedDatabase {
  /** postgres:// URL for `pg`. */
  url: string;
  /** True when this process hosts the server (and must keep running for the others). */
  host: boolean;
  close(): Promise<void>;
}

/** How long a hosting process waits for joined processes to disconnect before it stops. */
const DRAIN_MS = 30_000;

interface ServerFile {
  pid: number;
  port: number;
}

/**
 * DATA_DIR unless `dataDir` exists (or can be made) and this process may write there: checked
 * before anything starts, so a read-only mount or a typo fails at once with what to do.
 */
export async function checkDataDir(dataDir: string): Promise<void> {
  const unusable = (why: string, cause?: unknown) =>
    new ConstellationError('DATA_DIR', `the data directory ${dataDir} cannot be used: ${why}; set CONSTELLATION_DATA to a writable directory, or DATABASE_URL to use PostgreSQL`, { cause });
  try {
    await makeDirectory(dataDir);
  } catch (err) {
    throw unusable((err as Error).message, err);
  }
  if (!(await stat(dataDir)).isDirectory()) throw unusable('it is not a directory');
  try {
    await access(dataDir, constants.W_OK | constants.R_OK | constants.X_OK);
    // access() trusts the permission bits; a read-only mount only shows when writing.
    const probe = join(dataDir, `.write-test-${process.pid}`);
    await writeFile(probe, '');
    await rm(probe);
  } catch (err) {
    throw unusable((err as Error).message, err);
  }
}

/**
 * mkdir -p one level at a time: Node's own recursive mkdir never returns for a path in a
 * file system that refuses new entries with ENOENT (such as /proc).
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err;
    await makeDirectory(dirname(dir));
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}

/** Start (or join) the embedded database whose files live under `dataDir`. */
export async function startEmbeddedDatabase(dataDir: string, options: { waitMs?: number } = {}): Promise<EmbeddedDatabase> {
  await checkDataDir(dataDir);
  const lockPath = join(dataDir, 'server.lock');
  const infoPath = join(dataDir, 'server.json');
  const deadline = Date.now() + (options.waitMs ?? 60_000);
  for (;;) {
    const lock = await open(lockPath, 'wx').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return null;
      throw new ConstellationError('DATABASE', `cannot create ${lockPath}: ${err.message}`, { cause: err });
    });
    if (lock) {
      await lock.writeFile(String(process.pid));
      await lock.close();
      return host(dataDir, lockPath, infoPath);
    }
    const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (holder && !alive(holder)) {
      // The previous host died without cleaning up; its lock is stale.
      await rm(lockPath, { force: true });
      await rm(infoPath, { force: true });
      continue;
    }
    const info = await readFile(infoPath, 'utf8').then((t) => JSON.parse(t) as ServerFile).catch(() => null);
    if (info && info.pid === holder && (await reachable(info.port))) {
      return { url: urlFor(info.port), host: false, close: async () => {} };
    }
    if (Date.now() > deadline) {
      throw new ConstellationError('DATABASE', `the embedded database in ${dataDir} is held by process ${holder} but does not answer`);
    }
    await sleep(100);
  }
}

async function host(dataDir: string, lockPath: string, infoPath: string): Promise<EmbeddedDatabase> {
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    const pgdata = join(dataDir, 'pgdata');
    // A new data directory starts from the install-time template rather than a slow initdb.
    if (!(await stat(pgdata).catch(() => null))) await copyTemplate(pgdata);
    db = await PGlite.create(pgdata);
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 100 });
    await server.start();
    const port = portOf(server);
    await writeFile(infoPath, JSON.stringify({ pid: process.pid, port } satisfies ServerFile));
    let closed = false;
    return {
      url: urlFor(port),
      host: true,
      close: async () => {
        if (closed) return;
        closed = true;
        // Other brokers may have joined this server: let their connections finish first.
        const drainUntil = Date.now() + DRAIN_MS;
        while (server!.getStats().activeConnections > 0 && Date.now() < drainUntil) await sleep(100);
        await server!.stop().catch(() => {});
        await db!.close().catch(() => {});
        await rm(infoPath, { force: true });
        await rm(lockPath, { force: true });
      },
    };
  } catch (err) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    await rm(lockPath, { force: true });
    throw new ConstellationError('DATABASE', `cannot start the embedded database in ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
}

function portOf(server: PGLiteSocketServer): number {
  const conn = server.getServerConn();
  const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`unexpected pglite-socket address "${conn}"`);
  return port;
}

function urlFor(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}
