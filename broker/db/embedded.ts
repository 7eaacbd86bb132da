/**
 * The embedded default database: PGlite (PostgreSQL compiled to WASM) served over the
 * PostgreSQL wire protocol by pglite-socket, so the same `pg` code runs with no server
 * installed. Several broker processes on one data directory share the first one's server,
 * which runs in the first one's process or, for `serve`, in a host process of its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ConstellationError } from '../../registry/model/errors.js';
import type { HostMessage } from './embedded-host.js';
import { servePglite, type PgliteServer } from './pglite-server.js';

export interface EmbeddedDatabase {
  /** postgres:// URL for `pg`. */
  url: string;
  /** True when this process hosts the server (and must keep running for the others). */
  host: boolean;
  close(): Promise<void>;
}

/** Where the server runs when this process hosts it: here, or in a host process of its own. */
export type EmbeddedHost = 'in-process' | 'separate-process';

/** How long a separate host may take to start, and to drain and shut down when asked. */
const HOST_START_MS = 180_000;
const HOST_STOP_MS = 60_000;

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
export async function startEmbeddedDatabase(dataDir: string, options: { waitMs?: number; host?: EmbeddedHost } = {}): Promise<EmbeddedDatabase> {
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
      return host(dataDir, lockPath, infoPath, options.host ?? 'in-process');
    }
    // The lock names the hosting broker, then its host process when it has one.
    const pids = (await readFile(lockPath, 'utf8').catch(() => '')).trim().split(/\s+/).map(Number).filter((n) => Number.isInteger(n) && n > 0);
    const holder = pids[0];
    if (holder && !pids.some(alive)) {
      // The previous host died without cleaning up (and its host process has finished): the lock is stale.
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

async function host(dataDir: string, lockPath: string, infoPath: string, where: EmbeddedHost): Promise<EmbeddedDatabase> {
  const pgdata = join(dataDir, 'pgdata');
  let server: PgliteServer;
  try {
    server = where === 'in-process' ? await servePglite(pgdata) : await startHostProcess(pgdata, lockPath);
    await writeFile(infoPath, JSON.stringify({ pid: process.pid, port: server.port } satisfies ServerFile));
  } catch (err) {
    await rm(lockPath, { force: true });
    throw new ConstellationError('DATABASE', `cannot start the embedded database in ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  let closing: Promise<void> | undefined;
  return {
    url: urlFor(server.port),
    host: true,
    close: () =>
      (closing ??= (async () => {
        try {
          await server.close();
        } finally {
          await rm(infoPath, { force: true });
          await rm(lockPath, { force: true });
        }
      })()),
  };
}

/**
 * Fork ./embedded-host (from source through tsx when this module runs from source, as in the
 * tests) and wait for its port; its pid joins the lock, so a later start waits for it to finish.
 */
async function startHostProcess(pgdata: string, lockPath: string): Promise<PgliteServer> {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(`./embedded-host.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const child = fork(entry, [pgdata], { execArgv: fromSource ? ['--import', 'tsx'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the database process did not start in ${HOST_START_MS / 1000} s`)), HOST_START_MS);
    child.on('message', (m: HostMessage) => {
      clearTimeout(timer);
      if ('ready' in m) resolve(m.ready.port);
      else reject(new Error(m.failed));
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the database process exited (${code}) before it was ready`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  await writeFile(lockPath, `${process.pid} ${child.pid}`);
  return { port, close: () => stopHostProcess(child, exited) };
}

/** Ask the host process to drain and shut down; kill it if it does not within HOST_STOP_MS. */
async function stopHostProcess(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null) return;
  if (child.connected) child.send('stop');
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), HOST_STOP_MS);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new ConstellationError('DATABASE', `the embedded database process ended with ${code ?? 'a signal'} while stopping`);
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
