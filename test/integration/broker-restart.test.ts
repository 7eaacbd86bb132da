/**
 * The real `constellation serve`, killed with SIGKILL while a routed query runs at a site, then
 * started again on the same database: the job is resumed, finished, and never sent twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { packagePath } from '../../registry/paths.js';
import { jobById } from '../../registry/store/queries/jobs.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable } from '../sites/tap-service.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { CHILD_PATIENCE_MS, PATIENCE_MS, WAITING_TEST_MS, waitForReady, waitUntil, within } from '../support/wait.js';
import { freePort } from '../support/ports.js';

const TABLE: SimTable = {
  name: 'sdss.photoobj',
  rows: 900_000,
  heldRows: 200,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'objid', datatype: 'long' },
    { name: 'ra', datatype: 'double' },
    { name: 'dec', datatype: 'double' },
  ],
};


describe(`a broker killed mid-job (${backend})`, () => {
  let db: TestDatabase;
  let site: SimSite;
  let configFile: string;
  const children: ChildProcess[] = [];
  /** While set, the site leaves every status poll of an async job (a GET with UWS WAIT) unanswered. */
  let holdPolls = false;
  const isPoll = (method: string, url: string) => method === 'GET' && /^\/tap\/async\/[^/]+$/.test(url.split('?')[0]) && /[?&]WAIT=/i.test(url);

  /** `constellation serve` from source on the test database; resolves to its URL once ready. */
  async function serve(): Promise<{ url: string; child: ChildProcess; graphql: <T>(query: string) => Promise<T> }> {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, CONSTELLATION_CONFIG: configFile, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', CONSTELLATION_DATA: db.dataDir };
    if (db.url) env.DATABASE_URL = db.url;
    else delete env.DATABASE_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'serve'], { cwd: packagePath('.'), env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const url = `http://127.0.0.1:${port}`;
    // Not listening yet and listening but still starting (503) are both "not yet".
    await waitForReady(url, {
      exited: () => (child.exitCode !== null || child.signalCode !== null ? `serve exited with ${child.exitCode ?? child.signalCode}` : undefined),
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${stderr}`);
    });
    const graphql = async <T>(query: string): Promise<T> => {
      const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
      const body = (await res.json()) as { data?: T; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data!;
    };
    return { url, child, graphql };
  }

  beforeAll(async () => {
    db = await freshDatabase();
    site = new SimSite();
    // The site job sits queued for 3 s, then runs; the first broker never hears of it (holdPolls).
    mountTapService(site, { path: '/tap', tables: [TABLE], asyncDelayMs: 3000 });
    // Runs after the simulator's own hook, which records the request in `site.seen`.
    site.app.addHook('onRequest', async (request) => {
      if (holdPolls && isPoll(request.method, request.url)) await new Promise<void>(() => {});
    });
    await site.start();
    // The simulator boots its query engine (a PGlite in this process) on its first query, which
    // holds this process for a long time on a loaded machine: boot it now, not while a broker starts.
    const warm = await fetch(`${site.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: 'SELECT TOP 1 objid FROM sdss.photoobj' }) });
    expect(warm.status).toBe(200);
    await warm.arrayBuffer();
    configFile = join(db.dataDir, 'federation.yaml');
    await writeFile(configFile, `
federation: { name: restart }
# A development federation: the test harvests through the API without an admin's token.
registration: { open: true }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 60, leaseS: 6 }
jobs: { pollIntervalS: 0.2, leaseS: 5 }
sites:
  - { id: sdss, name: SDSS, adapter: tap, url: "${site.url}/tap" }
`);
  }, WAITING_TEST_MS);
  afterAll(async () => {
    // Every child is gone before its database is closed under it.
    await Promise.all(children.map((c) => {
      if (c.exitCode !== null || c.signalCode !== null) return undefined;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      return exited;
    }));
    await site?.close();
    await db?.close();
  });

  it('resumes polling after a restart and finishes the job without a second site job', async () => {
    const first = await serve();
    await first.graphql('mutation { harvest(siteId: "sdss") { outcome } }');
    // The site accepts the job (and answers the read of it that follows the POST) but none of the
    // first broker's polls, so however slowly this machine runs, that broker cannot learn that
    // the site job moved on: it dies with the job unfinished.
    holdPolls = true;
    const { submitQuery } = await first.graphql<{ submitQuery: { id: string; state: string; siteJobId: string } }>(
      'mutation { submitQuery(input: { adql: "SELECT objid, ra, dec FROM sdss.photoobj", idempotencyKey: "once" }) { id state siteJobId } }');
    expect(submitQuery.state).toBe('QUEUED');
    const jobPath = new URL(submitQuery.siteJobId).pathname;
    // Kill it once it has polled the site job at least once (that poll is held at the site).
    await waitUntil(() => site.seen.some((r) => isPoll(r.method, r.url) && r.url.startsWith(jobPath)), (polled) => polled, {
      describe: () => `the first broker never polled ${jobPath}`,
    });
    const exited = new Promise((r) => first.child.once('exit', (_code, signal) => r(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(['QUEUED', 'EXECUTING']).toContain((await jobById(db.pool, submitQuery.id))!.state);
    holdPolls = false;

    const second = await serve();
    const state = await waitUntil(
      async () => (await second.graphql<{ job: { state: string } }>(`{ job(id: "${submitQuery.id}") { state } }`)).job.state,
      (s) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(s),
      { describe: (s) => `job ${submitQuery.id} still ${s} after the restart` },
    );
    expect(state).toBe('COMPLETED');
    // The client retries its submit after the restart: the same job, still one site job.
    const again = await second.graphql<{ submitQuery: { id: string } }>(
      'mutation { submitQuery(input: { adql: "SELECT objid, ra, dec FROM sdss.photoobj", idempotencyKey: "once" }) { id } }');
    expect(again.submitQuery.id).toBe(submitQuery.id);
    expect(site.seen.filter((r) => r.method === 'POST' && r.url.split('?')[0].endsWith('/tap/async')).length).toBe(1);
    const res = await fetch(`${second.url}/results/${submitQuery.id}`);
    const { tables } = await readVOTableToArray([new Uint8Array(await res.arrayBuffer())]);
    expect(tables[0].rows.map((r) => r[0])).toEqual(simRows(TABLE).map((r) => r[0]));
    const stopped = new Promise((r) => second.child.once('exit', r));
    second.child.kill('SIGTERM');
    await within(stopped, 'serve did not exit on SIGTERM');
    // Two starts of the real command and a job's run, each with its own limit.
  }, 2 * CHILD_PATIENCE_MS + 2 * PATIENCE_MS);

  it('closes a harvest its killed broker left RUNNING as abandoned once the lease lapsed, and renews the lease of one that runs', async () => {
    const runs = async () => (await db.pool.query<{ id: string; outcome: string; code: string | null; lapsed: boolean; owner: string }>(
      `SELECT id, outcome, error_code AS code, lease_until < now() AS lapsed, owner FROM harvest_runs WHERE site_id = 'sdss' ORDER BY id`)).rows;
    const health = async () => (await db.pool.query<{ status: string; failures: number }>(`SELECT status, consecutive_failures AS failures FROM sites WHERE id = 'sdss'`)).rows[0];
    const before = await runs();
    const first = await serve();
    await first.graphql('mutation { harvest(siteId: "sdss") { outcome } }');
    const healthy = await health();
    expect(healthy).toEqual({ status: 'UP', failures: 0 });

    // A harvest that hangs at the site, its broker killed while it runs.
    await site.setFault({ kind: 'hang' });
    first.graphql('mutation { harvest(siteId: "sdss") { outcome } }').catch(() => {
      // The broker is killed under this request: its answer never comes.
    });
    const hung = await waitUntil(async () => (await runs()).find((r) => r.outcome === 'RUNNING'), (r) => r !== undefined, {
      describe: () => 'the hanging harvest was never recorded RUNNING',
    });
    const exited = new Promise((r) => first.child.once('exit', (_code, signal) => r(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect((await runs()).find((r) => r.id === hung!.id)?.outcome).toBe('RUNNING');
    await site.setFault({ kind: 'none' });

    // Another broker: once the dead one's lease has lapsed, its next harvest closes the run first.
    const second = await serve();
    await waitUntil(async () => (await runs()).find((r) => r.id === hung!.id)?.lapsed, Boolean, { describe: () => 'the killed broker\'s lease never lapsed' });
    await second.graphql('mutation { harvest(siteId: "sdss") { outcome } }');
    const after = await runs();
    expect(after.find((r) => r.id === hung!.id)).toMatchObject({ outcome: 'FAILED', code: 'CONSTELLATION_E_HARVEST_ABANDONED' });
    expect(after.at(-1)).toMatchObject({ outcome: 'OK' });
    expect(after.filter((r) => r.outcome === 'RUNNING')).toEqual([]);
    expect(after.length).toBe(before.length + 3);
    // Nothing says the site failed: its health is as the last real harvest left it.
    expect(await health()).toEqual(healthy);

    // A harvest of the living broker that outlasts several leases keeps its lease renewed.
    await site.setFault({ kind: 'hang' });
    second.graphql('mutation { harvest(siteId: "sdss") { outcome } }').catch(() => {
      // Killed below, as the first was.
    });
    const long = await waitUntil(async () => (await runs()).find((r) => r.outcome === 'RUNNING'), (r) => r !== undefined, {
      describe: () => 'the second hanging harvest was never recorded RUNNING',
    });
    // Three lease lengths by the database's clock, the lease renewed all along (every 2 s: only
    // a stall of the broker's event loop over 4 s could let it lapse, on the most loaded machine).
    await waitUntil(async () => (await db.pool.query<{ long: boolean }>(
      `SELECT now() > started_at + interval '18 seconds' AS long FROM harvest_runs WHERE id = $1`, [long!.id])).rows[0].long, Boolean);
    expect((await runs()).find((r) => r.id === long!.id)).toMatchObject({ outcome: 'RUNNING', lapsed: false });
    const gone = new Promise((r) => second.child.once('exit', r));
    second.child.kill('SIGKILL');
    await within(gone, 'serve did not exit on SIGKILL');
    await site.setFault({ kind: 'none' });
  }, 2 * CHILD_PATIENCE_MS + 4 * PATIENCE_MS);
});
