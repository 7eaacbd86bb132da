/**
 * The real `constellation serve`, killed with SIGKILL while a routed query runs at a site, then
 * started again on the same database: the job is resumed, finished, and never sent twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { packagePath } from '../../registry/paths.js';
import { jobById } from '../../registry/store/queries/jobs.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable } from '../sites/tap-service.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';

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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe(`a broker killed mid-job (${backend})`, () => {
  let db: TestDatabase;
  let site: SimSite;
  let configFile: string;
  const children: ChildProcess[] = [];

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
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}: ${stderr}`);
      const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`serve not ready after 60 s: ${stderr}`);
      await sleep(100);
    }
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
    // The site job sits queued for 3 s: long enough to kill the broker while it runs.
    mountTapService(site, { path: '/tap', tables: [TABLE], asyncDelayMs: 3000 });
    await site.start();
    configFile = join(db.dataDir, 'federation.yaml');
    await writeFile(configFile, `
federation: { name: restart }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 20 }
jobs: { pollIntervalS: 0.2, leaseS: 5 }
sites:
  - { id: sdss, name: SDSS, adapter: tap, url: "${site.url}/tap" }
`);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await site?.close();
    await db?.close();
  });

  it('resumes polling after a restart and finishes the job without a second site job', async () => {
    const first = await serve();
    await first.graphql('mutation { harvest(siteId: "sdss") { outcome } }');
    const { submitQuery } = await first.graphql<{ submitQuery: { id: string; state: string; siteJobId: string } }>(
      'mutation { submitQuery(input: { adql: "SELECT objid, ra, dec FROM sdss.photoobj", idempotencyKey: "once" }) { id state siteJobId } }');
    expect(submitQuery.state).toBe('QUEUED');
    const jobPath = new URL(submitQuery.siteJobId).pathname;
    // Kill it once it has polled the site job at least once, with the site job still queued.
    const deadline = Date.now() + 10_000;
    while (!site.seen.some((r) => r.method === 'GET' && r.url.startsWith(jobPath)) && Date.now() < deadline) await sleep(20);
    const exited = new Promise((r) => first.child.once('exit', (_code, signal) => r(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(['QUEUED', 'EXECUTING']).toContain((await jobById(db.pool, submitQuery.id))!.state);

    const second = await serve();
    let state = '';
    const until = Date.now() + 30_000;
    while (state !== 'COMPLETED' && Date.now() < until) {
      state = (await second.graphql<{ job: { state: string } }>(`{ job(id: "${submitQuery.id}") { state } }`)).job.state;
      if (state === 'ERROR' || state === 'ABORTED') break;
      await sleep(100);
    }
    expect(state).toBe('COMPLETED');
    // The client retries its submit after the restart: the same job, still one site job.
    const again = await second.graphql<{ submitQuery: { id: string } }>(
      'mutation { submitQuery(input: { adql: "SELECT objid, ra, dec FROM sdss.photoobj", idempotencyKey: "once" }) { id } }');
    expect(again.submitQuery.id).toBe(submitQuery.id);
    expect(site.seen.filter((r) => r.method === 'POST' && r.url.split('?')[0].endsWith('/tap/async')).length).toBe(1);
    const res = await fetch(`${second.url}/results/${submitQuery.id}`);
    const { tables } = await readVOTableToArray([new Uint8Array(await res.arrayBuffer())]);
    expect(tables[0].rows.map((r) => r[0])).toEqual(simRows(TABLE).map((r) => r[0]));
    second.child.kill('SIGTERM');
  });
});
