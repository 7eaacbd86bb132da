import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedConfig } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { startBroker } from '../support/broker.js';
import { runCli } from '../support/cli.js';

describe(`the shipped federation on a fresh start (${backend})`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.close());

  it('knows every member site from its seed, marked as seed', async () => {
    const broker = await startBroker(shippedConfig(), db);
    try {
      const { data } = await broker.graphql<{ sites: { id: string; origin: string; seeded: boolean; status: string; services: unknown[] }[] }>(
        '{ sites { id origin seeded status services { id } } }');
      expect(data!.sites.map((s) => s.id)).toEqual(['canfar', 'datalab', 'esa', 'mast', 'rsp', 'sciserver']);
      for (const s of data!.sites) {
        expect(s).toMatchObject({ origin: 'SEED', seeded: true, status: 'UNKNOWN' });
        expect(s.services.length).toBeGreaterThan(0);
      }
    } finally {
      await broker.close();
    }
  });

  it('answers datasets(filter:{text:"gaia"}) with Gaia DR3 gaia_source at three sites', async () => {
    const broker = await startBroker(shippedConfig(), db);
    try {
      const { data } = await broker.graphql<{ datasets: { id: string; replicas: { site: { id: string }; table: string }[] }[] }>(
        '{ datasets(filter: { text: "gaia" }) { id replicas { site { id } table } } }');
      const gaia = data!.datasets.find((d) => d.id === 'gaia_dr3.gaia_source');
      expect(gaia?.replicas.map((r) => r.site.id)).toEqual(['datalab', 'esa', 'mast']);
      // Each replica keeps the site's own spelling of the table.
      expect(new Set(gaia!.replicas.map((r) => r.table)).size).toBe(3);
      const ps1 = await broker.graphql<{ dataset: { replicas: { site: { id: string } }[] } }>('{ dataset(id: "ps1_dr2.mean_object") { replicas { site { id } } } }');
      expect(ps1.data!.dataset.replicas.map((r) => r.site.id)).toContain('mast');
    } finally {
      await broker.close();
    }
  });

  it('does not overwrite a published document with the seed on restart', async () => {
    const first = await startBroker(shippedConfig(), db);
    const current = await (await fetch(`${first.url}/sites/esa/capabilities`)).json() as { datasets: { rows?: number }[]; asOf: string };
    current.asOf = '2026-11-24T00:00:00Z';
    current.datasets = current.datasets.slice(0, 1);
    // The shipped federation names no identity provider and no publish keys: the API refuses
    // every publish, and only the local operator (as a CLI would) publishes.
    const put = await fetch(`${first.url}/sites/esa/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(current) });
    expect(put.status).toBe(401);
    expect(await put.json()).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
    await first.app.services.publisher.publish('esa', current, 'publish');
    await first.close();
    const second = await startBroker(shippedConfig(), db);
    try {
      const { data } = await second.graphql<{ site: { origin: string; replicas: unknown[]; asOf: string } }>('{ site(id: "esa") { origin asOf replicas { table } } }');
      expect(data!.site).toMatchObject({ origin: 'PUBLISH', asOf: '2026-11-24T00:00:00.000Z' });
      expect(data!.site.replicas).toHaveLength(1);
    } finally {
      await second.close();
    }
  });
});

describe(`the constellation command (${backend})`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.close());

  it('lists sites and datasets as readable tables', async () => {
    // With PostgreSQL the CLI shares the test database; embedded, it gets its own directory.
    const env = db.url ? { DATABASE_URL: db.url } : { DATABASE_URL: '', CONSTELLATION_DATA: `${db.dataDir}/cli` };
    const sites = await runCli(['sites'], env);
    expect(sites.code, sites.stderr).toBe(0);
    const lines = sites.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SITE\s+NAME\s+PLATFORM\s+STATUS\s+ORIGIN/);
    expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(['canfar', 'datalab', 'esa', 'mast', 'rsp', 'sciserver']);
    const datasets = await runCli(['datasets', '--text', 'gaia_source'], env);
    expect(datasets.code, datasets.stderr).toBe(0);
    const gaiaRows = datasets.stdout.split('\n').filter((l) => l.startsWith('gaia_dr3.gaia_source '));
    expect(gaiaRows.map((l) => l.split(/\s+/)[1])).toEqual(['datalab', 'esa', 'mast']);
    expect(datasets.stdout).toMatch(/1,811,709,771/);
  });

  it('exits 2 with usage on an unknown command and names a bad config key', async () => {
    const unknown = await runCli(['frobnicate'], { DATABASE_URL: db.url ?? '' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const badConfig = await runCli(['sites', '--config', 'test/fixtures/config/bad-federation.yaml'], { DATABASE_URL: db.url ?? '' });
    expect(badConfig.code).toBe(1);
    expect(badConfig.stderr).toMatch(/CONSTELLATION_E_INVALID_CONFIG/);
    expect(badConfig.stderr).toMatch(/sites\[0\]\.harvest\.schedule \(line \d+\)/);
    expect(badConfig.stderr).toMatch(/sites\[1\]\.colour/);
  });
});
