/**
 * Issue 9, findings 9 and 10: a harvest that would take away most of a site's datasets is held
 * for confirmation, and a harvest answered 304 puts back the harvested state when a document
 * was published over it. A simulated TAP site on 127.0.0.1 is harvested by a real broker.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { runCli } from '../support/cli.js';
import { CHILD_PATIENCE_MS } from '../support/wait.js';
import { keepOnly } from '../support/hostile.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable, type TapService } from '../sites/tap-service.js';

/** Ten small tables, survey.t0 … survey.t9. */
const TABLES: SimTable[] = Array.from({ length: 10 }, (_, i) => ({
  name: `survey.t${i}`, rows: 5,
  columns: [
    { name: 'id', datatype: 'int', ucd: 'meta.id;meta.main' },
    { name: 'mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag' },
  ],
}));
const ALL = TABLES.map((t) => t.name).sort();

const federation = (url: string) => `
federation: { name: harvest-guard }
# A development federation: the test republishes the site's document without a token.
registration: { open: true }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 30, maxRemovedShare: 0.5 }
sites:
  - id: guard
    name: Guarded TAP site
    adapter: tap
    url: "${url}/tap"
`;

type Run = { outcome: string; errorCode: string | null; errorMessage: string | null };
type SiteView = { status: string; origin: string | null; consecutiveFailures: number; replicas: { table: string }[]; lastHarvest: Run | null; documents: { origin: string }[] };

describe(`the harvest guard and harvested truth (${backend})`, () => {
  let sim: SimSite;
  let tap: TapService;
  let broker: TestBroker;
  let http: HttpClient;

  const harvest = (confirm?: boolean) => broker.harvest('guard', confirm);
  /** Run `steps` while the site lists only `kept` of its tables; it lists them all again afterwards. */
  const listing = async (kept: string[], steps: () => Promise<void>) => {
    tap.hostile.tables = keepOnly(kept);
    try {
      await steps();
    } finally {
      delete tap.hostile.tables;
    }
  };
  const site = async (): Promise<SiteView> => {
    const res = await broker.graphql<{ site: SiteView }>(
      '{ site(id: "guard") { status origin consecutiveFailures replicas { table } lastHarvest { outcome errorCode errorMessage } documents(limit: 20) { origin } } }');
    expect(res.errors).toBeUndefined();
    return res.data!.site;
  };
  const tables = (s: SiteView) => s.replicas.map((r) => r.table).sort();

  beforeAll(async () => {
    sim = new SimSite();
    tap = mountTapService(sim, { path: '/tap', tables: TABLES });
    await sim.start();
    http = new HttpClient({ retries: 1, retryBaseMs: 20 });
    broker = await startBroker(configFromYaml(federation(sim.url)), undefined, { http });
    expect((await harvest()).outcome).toBe('OK');
    expect(tables(await site())).toEqual(ALL);
  });
  afterAll(async () => {
    await broker?.close();
    await http?.close();
    await sim?.close();
  });

  it('holds a harvest that would remove 9 of 10 datasets, keeps the stored state, and applies it once confirmed', async () => {
    const documentsBefore = (await site()).documents.length;
    await listing(['survey.t3'], async () => {
      const held = await harvest();
      expect(held).toMatchObject({ outcome: 'HELD', errorCode: 'CONSTELLATION_E_HARVEST_HELD' });
      expect(held.errorMessage).toContain('would remove 9 of 10 datasets (90%)');
      expect(held.errorMessage).toContain('harvest(siteId: "guard", confirm: true)');
      expect(held.errorMessage).toContain('`constellation harvest guard --confirm`');
      let s = await site();
      expect(s).toMatchObject({ status: 'DEGRADED', origin: 'HARVEST', consecutiveFailures: 0, lastHarvest: { outcome: 'HELD', errorCode: 'CONSTELLATION_E_HARVEST_HELD' } });
      expect(tables(s)).toEqual(ALL);
      expect(s.documents).toHaveLength(documentsBefore);

      // Held again on the next run: the shrunken tableset is not let through as "not modified".
      expect((await harvest()).outcome).toBe('HELD');
      s = await site();
      expect(s.status).toBe('DEGRADED');
      expect(tables(s)).toEqual(ALL);

      const confirmed = await harvest(true);
      expect(confirmed).toMatchObject({ outcome: 'OK', errorCode: null });
      s = await site();
      expect(s).toMatchObject({ status: 'UP', origin: 'HARVEST' });
      expect(tables(s)).toEqual(['survey.t3']);
    });
    // Growing back from 1 to 10 tables removes nothing: applied.
    expect((await harvest()).outcome).toBe('OK');
    expect(tables(await site())).toEqual(ALL);
  });

  it('holds a harvest that finds no tables at all', async () => {
    await listing([], async () => {
      const held = await harvest();
      expect(held).toMatchObject({ outcome: 'HELD', errorCode: 'CONSTELLATION_E_HARVEST_HELD' });
      expect(held.errorMessage).toMatch(/^would remove 10 of 10 datasets \(100%\): the harvest found no datasets; held: confirm with /);
      const s = await site();
      expect(s.status).toBe('DEGRADED');
      expect(tables(s)).toEqual(ALL);
    });
    expect((await harvest()).outcome).toBe('OK');
    expect((await site()).status).toBe('UP');
  });

  it('applies a small change (2 of 10 tables gone, 20%) at once', async () => {
    const kept = ALL.filter((t) => t !== 'survey.t0' && t !== 'survey.t9');
    await listing(kept, async () => {
      expect(await harvest()).toMatchObject({ outcome: 'OK', errorCode: null });
      const s = await site();
      expect(s.status).toBe('UP');
      expect(tables(s)).toEqual(kept);
    });
    expect((await harvest()).outcome).toBe('OK');
    expect(tables(await site())).toEqual(ALL);
  });

  it('puts the harvested state back when a forged document was published and the site answers 304', async () => {
    expect((await harvest()).outcome).toBe('NOT_MODIFIED');
    const forged = {
      schemaVersion: 1,
      site: { id: 'guard', name: 'Guarded TAP site', platform: 'tap' },
      services: [{ id: 'tap', type: 'tap', url: `${sim.url}/tap` }],
      datasets: [{ id: 'forged.everything', service: 'tap', table: 'forged.everything', access: { public: true } }],
      compute: [],
      images: [],
      asOf: new Date().toISOString(),
    };
    const put = await fetch(`${broker.url}/sites/guard/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) });
    expect(put.status).toBeLessThan(300);
    let s = await site();
    expect(s.origin).toBe('PUBLISH');
    expect(tables(s)).toEqual(['forged.everything']);

    const conditional = sim.seen.length;
    const run = await harvest();
    // The tableset and capabilities were asked conditionally and the site said nothing changed …
    const asked = sim.seen.slice(conditional).filter((r) => /\/tap\/(tables|capabilities)/.test(r.url));
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(asked.every((r) => r.headers['if-none-match'] !== undefined)).toBe(true);
    // … yet the forged state is gone: not held (the forged table was never harvested), restored.
    expect(run).toMatchObject({ outcome: 'RESTORED', errorCode: null });
    expect(run.errorMessage).toContain('the site answered 304 (not modified) but the stored document (origin publish) was not the last harvested one');
    s = await site();
    expect(s).toMatchObject({ status: 'UP', origin: 'HARVEST', lastHarvest: { outcome: 'RESTORED' } });
    expect(tables(s)).toEqual(ALL);

    // Now the stored document is the harvested one again: a 304 changes nothing.
    expect((await harvest()).outcome).toBe('NOT_MODIFIED');
    expect((await site()).documents[0].origin).toBe('HARVEST');
  });

  // Four runs of the real command, each with runCli's limit of CHILD_PATIENCE_MS.
  it('holds from the command line (exit 1) and applies with --confirm (exit 0)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'constellation-guard-'));
    const config = join(dir, 'federation.yaml');
    try {
      await writeFile(config, federation(sim.url));
      // PostgreSQL: the broker's own database; PGlite: the command's own, harvested first in full.
      const env = broker.db.url ? { DATABASE_URL: broker.db.url } : { DATABASE_URL: '', CONSTELLATION_DATA: join(dir, 'data') };
      const honest = await runCli(['harvest', 'guard', '--config', config], env);
      expect(honest.code, honest.stderr).toBe(0);
      tap.hostile.tables = keepOnly(['survey.t3']);
      const held = await runCli(['harvest', 'guard', '--config', config], env);
      expect(held.code, held.stderr).toBe(1);
      expect(held.stdout).toMatch(/^guard\s+HELD\s.*CONSTELLATION_E_HARVEST_HELD: would remove 9 of 10 datasets \(90%\)/m);
      const confirmed = await runCli(['harvest', 'guard', '--confirm', '--config', config], env);
      expect(confirmed.code, confirmed.stderr).toBe(0);
      expect(confirmed.stdout).toMatch(/^guard\s+OK\s/m);
      const noSite = await runCli(['harvest', '--confirm', '--config', config], env);
      // A usage error (the CLI's exit code 2).
      expect(noSite.code).toBe(2);
      expect(noSite.stderr).toContain('CONSTELLATION_E_INVALID_ARGUMENT: harvest --confirm needs the SITE');
    } finally {
      delete tap.hostile.tables;
      await rm(dir, { recursive: true, force: true });
    }
  }, 4 * CHILD_PATIENCE_MS + 60_000);
});

describe('harvest.maxRemovedShare in federation.yaml', () => {
  it('defaults to 0.5 and must lie between 0 and 1', () => {
    const yaml = (harvest: string) => `federation: { name: share }\nharvest: { ${harvest} }\nsites: []\n`;
    expect(configFromYaml(yaml('concurrency: 1')).harvest.maxRemovedShare).toBe(0.5);
    expect(configFromYaml(yaml('maxRemovedShare: 0.2')).harvest.maxRemovedShare).toBe(0.2);
    let error: unknown;
    try {
      configFromYaml(yaml('maxRemovedShare: 1.5'));
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'CONSTELLATION_E_INVALID_CONFIG' });
    expect((error as Error).message).toContain('harvest.maxRemovedShare (line 2): must be <= 1');
  });
});

describe('harvest.leaseS in federation.yaml', () => {
  it('defaults to 30 s and refuses a lease too short to renew or longer than an hour', () => {
    const yaml = (harvest: string) => `federation: { name: lease }\nharvest: { ${harvest} }\nsites: []\n`;
    expect(configFromYaml(yaml('concurrency: 1')).harvest.leaseS).toBe(30);
    expect(configFromYaml(yaml('leaseS: 3')).harvest.leaseS).toBe(3);
    for (const [given, says] of [['0', 'must be >= 0.3'], ['7200', 'must be <= 3600'], ['"long"', 'must be number']]) {
      expect(() => configFromYaml(yaml(`leaseS: ${given}`))).toThrow(expect.objectContaining({ code: 'CONSTELLATION_E_INVALID_CONFIG', message: expect.stringContaining(`harvest.leaseS (line 2): ${says}`) }));
    }
  });
});
