/**
 * How long a new user waits: `constellation serve` (compiled, the README's `npm start`) from
 * process start to the port open and to /readyz 200, on a new embedded data directory and on an
 * existing one; the CLI's `sites` with that broker running. Baseline, in the same run: a child
 * process that imports fastify and answers on a port (what any Node server costs to start).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { packagePath } from '../registry/paths.js';
import { freePort } from '../test/support/ports.js';

export interface StartFigures {
  baselineMs: number[];
  fresh: { openMs: number[]; readyMs: number[] };
  existing: { openMs: number[]; readyMs: number[] };
  cliSitesMs: number[];
}

const BASELINE = `import Fastify from 'fastify'; const app = Fastify(); app.get('/readyz', async () => ({ ok: true }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });`;


/** Spawn `args`, time the first answer on the port and the first 200 from /readyz, then stop it. */
async function timeStart(args: string[], env: Record<string, string>): Promise<{ openMs: number; readyMs: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: packagePath('.'), env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  let openMs: number | undefined;
  try {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(10)) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (!res) continue;
      openMs ??= performance.now() - started;
      await res.arrayBuffer();
      if (res.status === 200) return { openMs, readyMs: performance.now() - started };
    }
    throw new Error(`${args.join(' ')} not ready in 120 s`);
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
  }
}

/** Run `runs` rounds, each: baseline, a fresh start, an existing start, and `sites` against a running broker. */
export async function benchStart(runs = 5): Promise<StartFigures> {
  const cli = packagePath('bin/constellation.js');
  const figures: StartFigures = { baselineMs: [], fresh: { openMs: [], readyMs: [] }, existing: { openMs: [], readyMs: [] }, cliSitesMs: [] };
  for (let i = 0; i < runs; i++) {
    figures.baselineMs.push((await timeStart(['--input-type=module', '-e', BASELINE], {})).readyMs);
    const dataDir = await mkdtemp(join(tmpdir(), 'constellation-bench-start-'));
    try {
      const env = { CONSTELLATION_DATA: dataDir, DATABASE_URL: '' };
      const fresh = await timeStart([cli, 'serve'], env);
      figures.fresh.openMs.push(fresh.openMs);
      figures.fresh.readyMs.push(fresh.readyMs);
      const existing = await timeStart([cli, 'serve'], env);
      figures.existing.openMs.push(existing.openMs);
      figures.existing.readyMs.push(existing.readyMs);
      figures.cliSitesMs.push(await timeCliWithBroker(cli, env));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  return figures;
}

/** `constellation sites` while a broker serves the same data directory (it answers over HTTP). */
async function timeCliWithBroker(cli: string, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const broker = spawn(process.execPath, [cli, 'serve'], { cwd: packagePath('.'), env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  try {
    for (const deadline = Date.now() + 120_000; ; await sleep(20)) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error('broker not ready in 120 s');
    }
    const started = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [cli, 'sites'], { cwd: packagePath('.'), env: { ...process.env, ...env, PORT: String(port) }, stdio: 'ignore' });
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`constellation sites exited ${code}`);
    return performance.now() - started;
  } finally {
    broker.kill('SIGTERM');
    if (broker.exitCode === null) await new Promise((resolve) => broker.once('exit', resolve));
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Print medians (and min–max) with each start as a ratio to the bare fastify start. */
export function printStart(f: StartFigures): void {
  const base = median(f.baselineMs);
  const row = (name: string, xs: number[]) =>
    console.log(`  ${name.padEnd(34)} ${median(xs).toFixed(0).padStart(6)} ms  (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})  ${(median(xs) / base).toFixed(2)}× bare`);
  console.log(`Start (${f.baselineMs.length} rounds, medians; compiled CLI, embedded database)`);
  row('bare fastify process, ready', f.baselineMs);
  row('serve, new data dir: port open', f.fresh.openMs);
  row('serve, new data dir: ready', f.fresh.readyMs);
  row('serve, existing data dir: port open', f.existing.openMs);
  row('serve, existing data dir: ready', f.existing.readyMs);
  row('sites, broker running', f.cliSitesMs);
}

if (import.meta.url === `file://${process.argv[1]}`) printStart(await benchStart(Number(process.argv[2] ?? 5)));
