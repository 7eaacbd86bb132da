/**
 * The broker under attack, in a child process of its own so that its RSS and its event loop are
 * its own (the hostile peers and the load generator run in the parent). Forked by
 * `startAttackBroker`; the child builds the real broker with buildApp from federation YAML on a
 * fresh database (embedded PGlite in a temporary directory, or a database of its own on the
 * DATABASE_URL server, dropped afterwards), listens on 127.0.0.1:0 and answers the parent's
 * requests over IPC: reset and report its event-loop delay, populate the registry, read a row.
 * Peak RSS is read by the parent from /proc (VmHWM, reset through clear_refs).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** What the parent may ask; each request carries an id its answer repeats. */
type Command =
  | { cmd: 'reset' }
  | { cmd: 'report' }
  | { cmd: 'populate'; sites: number; replicasPerSite: number; datasets: number }
  | { cmd: 'sql'; text: string; params?: unknown[] }
  | { cmd: 'parseConfig'; yaml: string }
  | { cmd: 'close' };

export interface LoopReport {
  /** Longest event-loop delay since the last reset (monitorEventLoopDelay, 5 ms resolution). */
  maxLoopBlockMs: number;
  rssBytes: number;
  /** Where the memory is: the JS heap, and memory outside it (the embedded database's WASM memory, buffers). */
  heapUsedBytes: number;
  externalBytes: number;
}

export interface AttackBroker {
  url: string;
  pid: number;
  /** How peak RSS is measured: VmHWM reset per attack, or VmRSS sampled every 20 ms when clear_refs cannot be written. */
  peakMethod: 'VmHWM' | 'VmRSS sampled every 20 ms';
  /** Start a measurement: clear the loop histogram and the peak RSS. */
  reset(): Promise<void>;
  /**
   * End a measurement: the longest loop block, the peak RSS and the CPU time of the broker's main
   * thread since reset(), and the memory now. On a loaded machine a block can be longer than the
   * CPU time behind it (the thread waited for a core): mainCpuMs bounds what the work itself took.
   */
  report(): Promise<LoopReport & { peakRssBytes: number; mainCpuMs: number }>;
  populate(sites: number, replicasPerSite: number, datasets: number): Promise<number>;
  sql<T>(text: string, params?: unknown[]): Promise<T[]>;
  /** Parse federation YAML in the broker's process: the error code and message, or the jobs timings. */
  parseConfig(yaml: string): Promise<{ code?: string; message?: string; jobs?: Record<string, number> }>;
  close(): Promise<void>;
}

// --- parent side ------------------------------------------------------------------------------

function statusKb(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU time (user + system) of the process's main thread, in ms (clock ticks of 10 ms). */
function mainThreadCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Fork the broker with `yaml` and `env` (site tokens); `cpuProfDir` runs it with --cpu-prof. */
export async function startAttackBroker(yaml: string, env: Record<string, string>, cpuProfDir?: string): Promise<AttackBroker> {
  const execArgv = ['--import', 'tsx', ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [])];
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--attack-broker-child'], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`attacked broker exited with ${code}`))));
  exited.catch(() => pending.forEach((p) => p.reject(new Error('attacked broker exited'))));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => ((m as { error?: string }).error ? reject(new Error((m as { error: string }).error)) : resolve((m as { url: string }).url)));
    exited.catch(reject);
    child.send({ yaml, env });
  });
  child.on('message', (m) => {
    const { id, error, value } = m as { id: number; error?: string; value?: unknown };
    const p = pending.get(id);
    pending.delete(id);
    if (error) p?.reject(new Error(error));
    else p?.resolve(value);
  });
  const call = <T>(command: Command): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, ...command });
    });

  const pid = child.pid!;
  // Resetting VmHWM needs write access to /proc/<pid>/clear_refs (we run as root); otherwise sample.
  let peakMethod: AttackBroker['peakMethod'] = 'VmHWM';
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    peakMethod = 'VmRSS sampled every 20 ms';
  }
  let sampled = 0;
  let cpuAtReset = 0;
  let sampler: NodeJS.Timeout | undefined;
  return {
    url,
    pid,
    peakMethod,
    async reset() {
      await call({ cmd: 'reset' });
      cpuAtReset = mainThreadCpuMs(pid);
      if (peakMethod === 'VmHWM') writeFileSync(`/proc/${pid}/clear_refs`, '5');
      else {
        sampled = statusKb(pid, 'VmRSS');
        clearInterval(sampler);
        sampler = setInterval(() => (sampled = Math.max(sampled, statusKb(pid, 'VmRSS'))), 20);
      }
    },
    async report() {
      const loop = await call<LoopReport>({ cmd: 'report' });
      const mainCpuMs = mainThreadCpuMs(pid) - cpuAtReset;
      if (peakMethod === 'VmHWM') return { ...loop, mainCpuMs, peakRssBytes: statusKb(pid, 'VmHWM') };
      clearInterval(sampler);
      return { ...loop, mainCpuMs, peakRssBytes: Math.max(sampled, loop.rssBytes) };
    },
    populate: (sites, replicasPerSite, datasets) => call<number>({ cmd: 'populate', sites, replicasPerSite, datasets }),
    sql: (text, params) => call({ cmd: 'sql', text, params }),
    parseConfig: (yaml) => call({ cmd: 'parseConfig', yaml }),
    async close() {
      clearInterval(sampler);
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await call({ cmd: 'close' }).catch(() => undefined);
      await gone;
    },
  };
}

// --- child side -------------------------------------------------------------------------------

async function child(): Promise<void> {
  // Imported here so the parent does not load the broker for nothing.
  const { buildApp } = await import('../broker/app.js');
  const { parseConfig } = await import('../broker/config/load.js');
  const { isConstellationError } = await import('../registry/model/errors.js');
  const { freshDatabase } = await import('../test/support/database.js');
  const { configFromYaml } = await import('../test/support/config.js');
  const { seededRandom } = await import('../test/support/random.js');
  const { siteDocument } = await import('./registry-graphql.js');

  const { yaml, env } = await new Promise<{ yaml: string; env: Record<string, string> }>((resolve) => process.once('message', (m) => resolve(m as never)));
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let close: () => Promise<void> = async () => undefined;
  try {
    // As `serve` runs it: an embedded database in a process of its own, not the broker's.
    const database = await freshDatabase({ recordStatements: false, embeddedHost: 'separate-process' });
    const app = await buildApp(configFromYaml(yaml, { LOG_LEVEL: 'error' }), { database, logger: false, env });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    close = async () => {
      await app.close();
      await database.close();
    };
    loop.enable();
    process.on('message', (m) => void answer(m as Command & { id: number }));
    process.send!({ url });

    async function answer(m: Command & { id: number }): Promise<void> {
      try {
        process.send!({ id: m.id, value: await run(m) });
      } catch (err) {
        process.send!({ id: m.id, error: String((err as Error).stack ?? err) });
      }
    }
    async function run(m: Command): Promise<unknown> {
      switch (m.cmd) {
        case 'reset':
          loop.reset();
          return null;
        case 'report': {
          const m = process.memoryUsage();
          return { maxLoopBlockMs: loop.max / 1e6, rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external } satisfies LoopReport;
        }
        case 'populate': {
          const rnd = seededRandom(20261123);
          const started = Date.now();
          for (let i = 0; i < m.sites; i++) {
            await app.services.publisher.publish(`site-${String(i).padStart(4, '0')}`, siteDocument(i, m, rnd), 'publish');
          }
          return (Date.now() - started) / 1000;
        }
        case 'sql':
          return (await database.pool.query(m.text, m.params)).rows;
        case 'parseConfig':
          try {
            return { jobs: parseConfig(m.yaml).jobs };
          } catch (err) {
            if (!isConstellationError(err)) throw err;
            return { code: err.code, message: err.message };
          }
        case 'close':
          loop.disable();
          await close();
          setImmediate(() => process.exit(0));
          return null;
      }
    }
  } catch (err) {
    process.send!({ error: String((err as Error).stack ?? err) });
    await close();
    process.exit(1);
  }
}

if (process.argv.includes('--attack-broker-child')) await child();
