/**
 * The first minutes of `constellation serve`, as a new user meets them: the port opens at
 * once and /readyz says what is still starting; every start failure is a coded error that
 * says what to do; the read commands ask a running broker instead of opening the database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../registry/paths.js';
import { childEnv, runCli } from '../support/cli.js';
import { backend } from '../support/database.js';
import { freePort } from '../support/ports.js';
import { waitUntil } from '../support/wait.js';
import { logSink } from '../support/log-capture.js';

/** Generous: a loaded 2-core machine compiles the CLI through tsx before the broker starts. */
const START_LIMIT_MS = 150_000;

interface Served {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

function serve(env: Record<string, string | undefined>): Served {
  const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'serve'], {
    cwd: packagePath('.'),
    env: childEnv({ LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // The broker's log lines join the file's capture, checked for secrets after the file.
  const capture = (d: Buffer) => {
    out += d;
    logSink.write(d);
  };
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url: `http://127.0.0.1:${env.PORT}`, output: () => out, exited };
}


/** Poll `url` until it answers at all (connection refused means the port is not open yet). */
async function firstAnswer(url: string, served: Served): Promise<Response> {
  const deadline = Date.now() + START_LIMIT_MS;
  for (;;) {
    try {
      return await fetch(url);
    } catch {
      if (served.child.exitCode !== null) throw new Error(`serve exited ${served.child.exitCode}:\n${served.output()}`);
      if (Date.now() > deadline) throw new Error(`no answer from ${url} in ${START_LIMIT_MS} ms:\n${served.output()}`);
      await sleep(20);
    }
  }
}

async function untilReady(served: Served): Promise<void> {
  const deadline = Date.now() + START_LIMIT_MS;
  while ((await firstAnswer(`${served.url}/readyz`, served)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`not ready in ${START_LIMIT_MS} ms:\n${served.output()}`);
    await sleep(50);
  }
}

describe(`constellation serve starting (${backend})`, () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'constellation-serve-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };
  const stop = (served: Served) => async () => {
    if (served.child.exitCode === null) served.child.kill('SIGTERM');
    await served.exited;
  };

  it('listens at once, reports each start phase on /readyz and in the log, then is ready; read commands ask it over HTTP', async () => {
    const data = await tempDir();
    const env = { PORT: String(await freePort()), CONSTELLATION_DATA: join(data, 'db') };
    const served = serve(env);
    cleanup.push(stop(served));
    const first = await firstAnswer(`${served.url}/readyz`, served);
    // The port opens before the database starts, so the first answer is "starting".
    expect(first.status).toBe(503);
    const starting = (await first.json()) as { status: string; phases: { name: string; state: string }[] };
    expect(starting.status).toBe('starting');
    expect(starting.phases.map((p) => p.name)).toEqual(['database', 'migrations', 'sites and seeds', 'registry views', 'jobs and schedules']);
    await untilReady(served);
    const ready = (await (await fetch(`${served.url}/readyz`)).json()) as { status: string; federation: string; phases: { state: string; ms: number }[] };
    expect(ready.status).toBe('ready');
    expect(ready.federation).toBe('default');
    expect(ready.phases.every((p) => p.state === 'done' && p.ms >= 0)).toBe(true);
    for (const phase of ['database', 'migrations', 'sites and seeds', 'registry views', 'jobs and schedules']) {
      expect(served.output()).toMatch(new RegExp(`"start: ${phase} in \\d+ ms"`));
    }
    expect(served.output()).toMatch(/constellation ready in \d+ ms/);

    const sites = await runCli(['sites'], { ...env, DATABASE_URL: '' }, START_LIMIT_MS);
    expect(sites.code, sites.stderr).toBe(0);
    expect(sites.stdout).toMatch(/^esa\s+ESA Gaia archive/m);
    // Answered by the broker: the CLI did not open the (hosted) embedded database itself.
    expect(sites.stderr).not.toMatch(/reading .* directly/);
    const datasets = await runCli(['datasets', '--text', 'gaia'], { ...env, DATABASE_URL: '' }, START_LIMIT_MS);
    expect(datasets.code, datasets.stderr).toBe(0);
    expect(datasets.stdout).toMatch(/^gaia_dr3\.gaia_source\s+esa\s+gaiadr3\.gaia_source/m);
  }, START_LIMIT_MS * 3);

  it('hosts the embedded database in a process of its own, which ends with the broker, even one killed with SIGKILL', async () => {
    const data = await tempDir();
    const dir = join(data, 'db');
    const env = { PORT: String(await freePort()), CONSTELLATION_DATA: dir, DATABASE_URL: '' };
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const first = serve(env);
    cleanup.push(stop(first));
    await untilReady(first);
    // The lock names the broker, then the database's own process.
    const [broker, host] = (await readFile(join(dir, 'server.lock'), 'utf8')).trim().split(' ').map(Number);
    expect(broker).toBe(first.child.pid);
    expect(host).toBeGreaterThan(0);
    expect(host).not.toBe(broker);
    expect(alive(host)).toBe(true);
    first.child.kill('SIGKILL');
    await first.exited;
    // Its parent gone, the database process shuts down by itself rather than hold the directory.
    await waitUntil(async () => alive(host), (up) => !up, { describe: () => `database process ${host} still running after its broker was killed` });
    const second = serve(env);
    cleanup.push(stop(second));
    await untilReady(second);
    const res = await fetch(`${second.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ sites { id } }' }) });
    expect(((await res.json()) as { data: { sites: { id: string }[] } }).data.sites.map((x) => x.id)).toContain('esa');
    const [, secondHost] = (await readFile(join(dir, 'server.lock'), 'utf8')).trim().split(' ').map(Number);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // A clean stop takes the database process and the lock with it.
    expect(alive(secondHost)).toBe(false);
    expect(await stat(join(dir, 'server.lock')).catch(() => null)).toBeNull();
  }, START_LIMIT_MS * 3);

  it('without a running broker the read commands say they read the database themselves', async () => {
    const data = await tempDir();
    const result = await runCli(['sites'], { PORT: String(await freePort()), DATABASE_URL: '', CONSTELLATION_DATA: join(data, 'db') }, START_LIMIT_MS);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/no broker answering at .*; reading the embedded database in .* directly/);
    expect(result.stdout).toMatch(/^rsp\s+/m);
  }, START_LIMIT_MS * 2);

  it('answers 503 STARTING while the database is not there yet, and a database that never answers ends the start with DATABASE', async () => {
    // A listener that accepts connections and never speaks: the migrations phase waits on it.
    const sockets: import('node:net').Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const env = { PORT: String(await freePort()), DATABASE_URL: `postgres://postgres@127.0.0.1:${(silent.address() as { port: number }).port}/none` };
    const served = serve(env);
    cleanup.push(stop(served));
    const answer = await firstAnswer(`${served.url}/readyz`, served);
    expect(answer.status).toBe(503);
    const graphql = await fetch(`${served.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ sites { id } }"}' });
    expect(graphql.status).toBe(503);
    expect(((await graphql.json()) as { code: string }).code).toBe('CONSTELLATION_E_STARTING');
    expect(await served.exited).toBe(1);
    expect(served.output()).toContain('CONSTELLATION_E_DATABASE');
  }, START_LIMIT_MS * 2);

  it('a port in use is PORT_IN_USE, reported before the database starts', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => busy.close(resolve)));
    const data = await tempDir();
    const served = serve({ PORT: String((busy.address() as { port: number }).port), DATABASE_URL: '', CONSTELLATION_DATA: join(data, 'db') });
    expect(await served.exited).toBe(1);
    expect(served.output()).toMatch(/CONSTELLATION_E_PORT_IN_USE: port 127\.0\.0\.1:\d+ is in use .*set PORT/);
    expect(served.output()).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    await expect(stat(join(data, 'db', 'pgdata'))).rejects.toThrow(); // the database never started
  }, START_LIMIT_MS);

  it('an unusable data directory is DATA_DIR, saying what to set', async () => {
    const data = await tempDir();
    const file = join(data, 'a-file');
    await writeFile(file, '');
    for (const dir of [join(file, 'db'), '/proc/constellation-data']) {
      const served = serve({ PORT: String(await freePort()), DATABASE_URL: '', CONSTELLATION_DATA: dir });
      expect(await served.exited).toBe(1);
      expect(served.output()).toContain(`CONSTELLATION_E_DATA_DIR: the data directory ${dir} cannot be used`);
      expect(served.output()).toContain('set CONSTELLATION_DATA to a writable directory');
    }
  }, START_LIMIT_MS * 2);

  it('a seed is checked on every start: missing, not JSON or invalid each stop it with INVALID_CONFIG naming the file', async () => {
    const dir = await tempDir();
    // A copy of the shipped federation file elsewhere: its seed paths now point beside the copy.
    const config = join(dir, 'federation.yaml');
    await copyFile(packagePath('federation.yaml'), config);
    const env = { PORT: String(await freePort()), DATABASE_URL: '', CONSTELLATION_DATA: join(dir, 'db'), CONSTELLATION_CONFIG: config };
    let served = serve(env);
    expect(await served.exited).toBe(1);
    expect(served.output()).toMatch(/CONSTELLATION_E_INVALID_CONFIG: seed of site "\w+" \(.*seeds\/\w+\.json.*relative paths start at that file's folder\) does not exist/);

    // With the seeds beside it, but one of them broken in two ways.
    const text = await readFile(config, 'utf8');
    await writeFile(config, text.replace(/seed: seeds\//g, `seed: ${packagePath('seeds')}/`).replace(`${packagePath('seeds')}/esa.json`, join(dir, 'esa.json')));
    await writeFile(join(dir, 'esa.json'), '{ "schemaVersion": 1, ');
    served = serve(env);
    expect(await served.exited).toBe(1);
    expect(served.output()).toMatch(/CONSTELLATION_E_INVALID_CONFIG: seed of site "esa" .* is not JSON/);

    const esa = JSON.parse(await readFile(packagePath('seeds/esa.json'), 'utf8')) as { datasets: { rows: unknown }[] };
    esa.datasets[0].rows = 'many';
    await writeFile(join(dir, 'esa.json'), JSON.stringify(esa));
    served = serve(env);
    expect(await served.exited).toBe(1);
    expect(served.output()).toMatch(/CONSTELLATION_E_INVALID_CONFIG: seed of site "esa" .* is not a valid capability document/);
    expect(served.output()).toContain('/datasets/0/rows');
  }, START_LIMIT_MS * 3);
});
