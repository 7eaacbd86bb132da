import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { HttpClient } from '../../adapters/http.js';
import { buildApp } from '../../broker/app.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { SimSite, type Fault } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { CHILD_PATIENCE_MS, WAITING_TEST_MS, waitUntil, within } from '../support/wait.js';

const TABLES: SimTable[] = [
  {
    name: 'gaiadr3.gaia_source', rows: 500, position: { ra: 'ra', dec: 'dec' },
    columns: [
      { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt' },
    ],
  },
  {
    name: 'ps1.MeanObject', rows: 300, position: { ra: 'raMean', dec: 'decMean' },
    columns: [
      { name: 'objID', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'raMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'decMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    ],
  },
];

/** Short timeouts and quick retries, so fault modes resolve in seconds. */
const fastHttp = () => new HttpClient({ connectTimeoutMs: 1000, headersTimeoutMs: 1500, bodyTimeoutMs: 1500, retries: 1, retryBaseMs: 50, maxRetryDelayMs: 3000 });

function federation(url: string, extra = ''): string {
  return `
federation: { name: harvest-test }
harvest: { concurrency: 2, jitterS: 0, timeoutS: 20 }
sites:
  - id: simtap
    name: Simulated TAP site
    adapter: tap
    url: "${url}/tap"
    datasets:
      ps1.MeanObject: { id: ps1_dr2.mean_object, columns: { raMean: ramean, decMean: decmean, objID: objid } }
${extra}`;
}

type SiteView = { status: string; origin: string | null; consecutiveFailures: number; replicas: { table: string; dataset: { id: string } }[];
  lastHarvest: { outcome: string; errorCode: string | null; bytes: number | null } | null };

describe(`harvesting a simulated TAP site (${backend})`, () => {
  let sim: SimSite;
  let broker: TestBroker;
  let http: HttpClient;

  const harvest = () => broker.harvest('simtap');
  const site = async () => (await broker.graphql<{ site: SiteView }>(
    '{ site(id: "simtap") { status origin consecutiveFailures replicas { table dataset { id } } lastHarvest { outcome errorCode bytes } } }')).data!.site;

  beforeAll(async () => {
    sim = new SimSite();
    mountTapService(sim, { path: '/tap', tables: TABLES, maxRec: 1000, hardMaxRec: 5000 });
    await sim.start();
    http = fastHttp();
    broker = await startBroker(configFromYaml(federation(sim.url)), undefined, { http });
  });
  afterAll(async () => {
    await broker?.close();
    await http?.close();
    await sim?.close();
  });

  it('starts UNKNOWN and becomes UP with the harvested tables under mapped canonical ids', async () => {
    expect((await site()).status).toBe('UNKNOWN');
    const run = await harvest();
    expect(run.outcome).toBe('OK');
    expect(run.bytes).toBeGreaterThan(500);
    const s = await site();
    expect(s).toMatchObject({ status: 'UP', origin: 'HARVEST', consecutiveFailures: 0, lastHarvest: { outcome: 'OK' } });
    expect(s.replicas.map((r) => [r.dataset.id, r.table]).sort()).toEqual([['gaiadr3.gaia_source', 'gaiadr3.gaia_source'], ['ps1_dr2.mean_object', 'ps1.MeanObject']]);
    const service = await broker.graphql<{ site: { services: { type: string; upload: boolean; maxRec: number }[] } }>('{ site(id: "simtap") { services { type upload maxRec } } }');
    expect(service.data!.site.services).toEqual([{ type: 'tap', upload: true, maxRec: 5000 }]);
  });

  it('answers an unchanged site with NOT_MODIFIED through conditional requests', async () => {
    const run = await harvest();
    expect(run.outcome).toBe('NOT_MODIFIED');
    expect(sim.seen.some((r) => r.headers['if-none-match'] !== undefined)).toBe(true);
    expect((await site()).status).toBe('UP');
  });

  const faults: [string, Fault, string][] = [
    ['refused connections', { kind: 'refuse' }, 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE'],
    ['a hanging server', { kind: 'hang' }, 'CONSTELLATION_E_UPSTREAM_TIMEOUT'],
    ['HTTP 500', { kind: 'status', status: 500 }, 'CONSTELLATION_E_UPSTREAM'],
    ['malformed XML', { kind: 'malformed-xml' }, 'CONSTELLATION_E_UPSTREAM_MALFORMED'],
    ['a truncated body', { kind: 'truncate', afterBytes: 200 }, 'CONSTELLATION_E_UPSTREAM_MALFORMED'],
    ['a body slower than the body timeout', { kind: 'slow-body', bytesPerTick: 10, tickMs: 2000 }, 'CONSTELLATION_E_UPSTREAM_TIMEOUT'],
  ];

  it.each(faults)('keeps the last good document through %s and degrades, then recovers', async (_name, fault, code) => {
    await sim.setFault(fault);
    try {
      const first = await harvest();
      expect(first).toMatchObject({ outcome: 'FAILED', errorCode: code });
      let s = await site();
      expect(s.status).toBe('DEGRADED');
      expect(s.replicas).toHaveLength(2);
      expect(s.origin).toBe('HARVEST');
    } finally {
      await sim.setFault({ kind: 'none' });
    }
    expect((await harvest()).outcome).toMatch(/^(OK|NOT_MODIFIED)$/);
    expect((await site()).status).toBe('UP');
  });

  it('goes DOWN after three failures in a row, and UP again on success', async () => {
    await sim.setFault({ kind: 'status', status: 503 });
    const statuses: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        await harvest();
        statuses.push((await site()).status);
      }
    } finally {
      await sim.setFault({ kind: 'none' });
    }
    expect(statuses).toEqual(['DEGRADED', 'DEGRADED', 'DOWN']);
    expect((await site()).replicas).toHaveLength(2);
    await harvest();
    expect(await site()).toMatchObject({ status: 'UP', consecutiveFailures: 0 });
  });

  it('waits out a 429 with Retry-After and succeeds', async () => {
    await sim.setFault({ kind: 'rate-limit', retryAfterS: 1, times: 1 });
    const started = Date.now();
    const run = await harvest();
    expect(run.outcome).toMatch(/^(OK|NOT_MODIFIED)$/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await sim.setFault({ kind: 'none' });
  });

  // Two runs of the real command, each with runCli's limit of CHILD_PATIENCE_MS.
  it('harvests from the command line, printing the run and exiting 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'constellation-cli-'));
    try {
      await writeFile(join(dir, 'federation.yaml'), federation(sim.url));
      const env = broker.db.url ? { DATABASE_URL: broker.db.url } : { DATABASE_URL: '', CONSTELLATION_DATA: join(dir, 'data') };
      const out = await runCli(['harvest', 'simtap', '--config', join(dir, 'federation.yaml')], env);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/^simtap\s+(OK|NOT_MODIFIED)\s/m);
      await sim.setFault({ kind: 'status', status: 500 });
      const failed = await runCli(['harvest', 'simtap', '--config', join(dir, 'federation.yaml')], env);
      await sim.setFault({ kind: 'none' });
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/^simtap\s+FAILED\s.*CONSTELLATION_E_UPSTREAM/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 2 * CHILD_PATIENCE_MS + 60_000);

  it('refuses to harvest a site that is not configured', async () => {
    await expect(broker.harvest('elsewhere')).rejects.toMatchObject({ code: 'CONSTELLATION_E_UNKNOWN_SITE' });
  });
});

describe(`scheduled harvests across two broker replicas (${backend})`, () => {
  let sim: SimSite;
  let db: TestDatabase;
  beforeAll(async () => {
    sim = new SimSite();
    mountTapService(sim, { path: '/tap', tables: TABLES.slice(0, 1) });
    await sim.start();
    db = await freshDatabase();
  });
  afterAll(async () => {
    await db?.close();
    await sim?.close();
  });

  it('runs each tick once, whichever replica claims it', async () => {
    // node-cron's six-field form: every second.
    const config = configFromYaml(federation(sim.url).replace('    adapter: tap', '    adapter: tap\n    harvest: { schedule: "* * * * * *" }'));
    const clients = [fastHttp(), fastHttp()];
    const a = await buildApp(config, { database: db, logger: false, schedule: true, http: clients[0] });
    const b = await buildApp(config, { database: db, logger: false, schedule: true, prepared: true, http: clients[1] });
    // One snapshot of claimed ticks and recorded scheduled runs (one statement, so the two agree).
    const count = async () => (await db.pool.query<{ ticks: number; runs: number; running: number }>(
      `SELECT (SELECT count(*)::int FROM harvest_ticks) AS ticks,
              (SELECT count(*)::int FROM harvest_runs WHERE trigger = 'schedule') AS runs,
              (SELECT count(*)::int FROM harvest_runs WHERE trigger = 'schedule' AND outcome = 'RUNNING') AS running`)).rows[0];
    // Let the two replicas claim at least three ticks, however slowly the machine runs them.
    const seen = await waitUntil(count, (c) => c.ticks >= 3, { describe: (c) => `${c.ticks} ticks claimed` });
    await a.close();
    await b.close();
    for (const c of clients) await c.close();
    // Harvests already started finish recording after the close: wait until every claimed tick
    // has its run and none is still RUNNING. A tick claimed but never harvested would end this
    // wait at its limit; one harvested twice shows up below as more runs than ticks.
    const settled = await waitUntil(count, (c) => c.runs >= c.ticks && c.running === 0, {
      describe: (c) => `${c.ticks} ticks claimed, ${c.runs} scheduled runs recorded (${c.running} still RUNNING)`,
    });
    // A tick a replica claimed as it stopped, before its harvest started, is given back
    // (releaseHarvestTick): of the ticks seen claimed above, one per replica may be gone.
    expect(settled.ticks).toBeGreaterThanOrEqual(seen.ticks - 2);
    expect(settled.runs).toBeLessThanOrEqual(settled.ticks);
    expect(settled.runs).toBeGreaterThanOrEqual(settled.ticks - 1);
  }, WAITING_TEST_MS * 2);
});

describe(`many sites harvested concurrently (${backend})`, () => {
  it('harvests sixteen simulated sites eight at a time, each run recorded once', async () => {
    // Twenty tables of twenty columns each: publishes long enough to overlap.
    const wide: SimTable[] = Array.from({ length: 20 }, (_, t) => ({
      name: `survey${t % 4}.table${t}`, rows: 10, position: { ra: 'ra', dec: 'dec' },
      columns: [TABLES[0].columns[1], TABLES[0].columns[2], ...Array.from({ length: 18 }, (_, c) => ({ name: `c${c}`, datatype: 'float' as const }))],
    }));
    const sims = await Promise.all(Array.from({ length: 16 }, async () => {
      const s = new SimSite();
      mountTapService(s, { path: '/tap', tables: wide });
      return s.start();
    }));
    const yaml = `federation: { name: many }\nharvest: { concurrency: 8, jitterS: 0, timeoutS: 30 }\nsites:\n` +
      sims.map((s, i) => `  - { id: sim-${i}, name: Sim ${i}, adapter: tap, url: "${s.url}/tap" }`).join('\n') + '\n';
    const http = fastHttp();
    const broker = await startBroker(configFromYaml(yaml), undefined, { http });
    try {
      const runs = await within(broker.app.services.harvester.harvestAll('test'), 'concurrent harvests did not finish');
      expect(runs.map((r) => r.outcome)).toEqual(Array(16).fill('OK'));
      const { data } = await broker.graphql<{ sites: { status: string; replicas: unknown[] }[] }>('{ sites { status replicas { table } } }');
      expect(data!.sites.every((s) => s.status === 'UP' && s.replicas.length === 20)).toBe(true);
      const counted = await broker.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM harvest_runs WHERE trigger = 'test'");
      expect(counted.rows[0].n).toBe(16);
    } finally {
      await broker.close();
      await http.close();
      for (const s of sims) await s.close();
    }
  }, WAITING_TEST_MS);
});
