import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { upsertConfiguredSite } from '../../registry/store/queries/sites.js';
import { WAITING_TEST_MS, waitUntil, within } from '../support/wait.js';

// Two sites with overlapping data and different sky coverage.
const north = documentFor('north', [
  { id: 'gaia_dr3.gaia_source', table: 'gaiadr3.gaia_source', title: 'Gaia DR3 source catalogue', coverage: '0/0-11', rows: 1811709771 },
  { id: 'ps1_dr2.mean_object', table: 'dbo.MeanObjectView', title: 'Pan-STARRS1 DR2 mean objects', coverage: '1/0-23 2/96-99', rows: 10723304629,
    columns: [
      { name: 'raMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'decMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'gMeanPSFMag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.B' },
    ],
    position: { ra: 'raMean', dec: 'decMean' } },
]);
const south = documentFor('south', [
  { id: 'gaia_dr3.gaia_source', table: 'gaia_dr3.gaia_source', coverage: '0/0-11', rows: 1811709771 },
  // Order-0 cells 8-11 are the southern polar cap.
  { id: 'des_dr2.main', table: 'des_dr2.main', title: 'DES DR2', coverage: '0/8-11' },
], {
  images: [
    { ref: 'images.example.org/astro/astroml:24.07', types: ['headless', 'notebook'], arch: 'amd64', software: ['astropy=6.1', 'scikit-learn=1.5'],
      digest: 'sha256:' + 'a'.repeat(64) },
    { ref: 'images.example.org/astro/base:1.0', types: ['notebook'], arch: 'arm64', software: ['python=3.12'] },
  ],
  compute: [{ id: 'batch', kind: 'batch', cores: 512, memoryGb: 4096, gpus: 8, freeCores: 96, queueWaitS: 120 }],
});

/**
 * The statements a piece of work runs itself, told apart from those the broker's background loops
 * (job poller, coverage and planner followers) run meanwhile. The test database records every
 * statement with `statements.push(sql)`, called synchronously in the async context of whoever
 * runs it; work started inside `own.run(list, ...)` also gets `list` in that context.
 */
const own = new AsyncLocalStorage<string[]>();

function followOwnStatements(recorded: string[]): void {
  recorded.push = (...items: string[]): number => {
    own.getStore()?.push(...items);
    return Array.prototype.push.apply(recorded, items);
  };
}

describe(`registry discovery over GraphQL (${backend})`, () => {
  let broker: TestBroker;

  beforeAll(async () => {
    // The job poller ticks as in production: the statement count below leaves its statements out.
    broker = await startBroker(configFromYaml(OPEN_FEDERATION));
    followOwnStatements(broker.db.statements);
    for (const doc of [north, south]) {
      const res = await fetch(`${broker.url}/sites/${doc.site.id}/capabilities`, {
        method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc),
      });
      expect(res.status).toBe(200);
    }
  });
  afterAll(() => broker?.close());

  it('joins replicas of one canonical dataset across sites', async () => {
    const { data } = await broker.graphql<{ dataset: { id: string; title: string; replicas: { site: { id: string }; table: string; rows: number }[] } }>(
      `{ dataset(id: "gaia_dr3.gaia_source") { id title replicas { site { id } table rows } } }`);
    expect(data!.dataset.title).toBe('Gaia DR3 source catalogue');
    expect(data!.dataset.replicas.map((r) => [r.site.id, r.table])).toEqual([['north', 'gaiadr3.gaia_source'], ['south', 'gaia_dr3.gaia_source']]);
    expect(data!.dataset.replicas[0].rows).toBe(1811709771);
  });

  it('filters datasets by text, UCD, site and cone', async () => {
    const ids = async (filter: string) =>
      ((await broker.graphql<{ datasets: { id: string }[] }>(`{ datasets(filter: ${filter}) { id } }`)).data!.datasets).map((d) => d.id);
    expect(await ids('{ text: "pan-starrs" }')).toEqual(['ps1_dr2.mean_object']);
    expect(await ids('{ text: "MeanObjectView" }')).toEqual(['ps1_dr2.mean_object']);
    expect(await ids('{ ucd: "phot.mag" }')).toEqual(['ps1_dr2.mean_object']);
    expect(await ids('{ ucd: "pos.eq.ra" }')).toEqual(['des_dr2.main', 'gaia_dr3.gaia_source', 'ps1_dr2.mean_object']);
    expect(await ids('{ site: "south" }')).toEqual(['des_dr2.main', 'gaia_dr3.gaia_source']);
    // The north pole is outside DES (southern cap) but inside Gaia and PS1's order-1 cells 0-23.
    expect(await ids('{ cone: { ra: 10, dec: 89, radiusDeg: 0.5 } }')).toEqual(['gaia_dr3.gaia_source', 'ps1_dr2.mean_object']);
    expect(await ids('{ cone: { ra: 10, dec: -89, radiusDeg: 0.5 } }')).toEqual(['des_dr2.main', 'gaia_dr3.gaia_source']);
    expect(await ids('{ region: { moc: "3/700" }, text: "des" }')).toEqual(['des_dr2.main']);
    // Pages of a region-only query follow the same order as unpaged results.
    const whole = await ids('{ cone: { ra: 10, dec: -89, radiusDeg: 0.5 } }');
    const page = async (offset: number) => ((await broker.graphql<{ datasets: { id: string }[] }>(
      `{ datasets(filter: { cone: { ra: 10, dec: -89, radiusDeg: 0.5 } }, limit: 1, offset: ${offset}) { id } }`)).data!.datasets).map((d) => d.id);
    expect([...(await page(0)), ...(await page(1)), ...(await page(2))]).toEqual(whole);
  });

  it('serves canonical and local column names', async () => {
    const { data } = await broker.graphql<{ dataset: { columns: { name: string; ucd: string }[]; replicas: { columns: { name: string }[]; position: { ra: string } }[] } }>(
      `{ dataset(id: "ps1_dr2.mean_object") { columns { name ucd } replicas { position { ra } columns { name } } } }`);
    // Canonical names, in the first replica's own column order (ede3b11).
    expect(data!.dataset.columns.map((c) => c.name)).toEqual(['ramean', 'decmean', 'gmeanpsfmag']);
    expect(data!.dataset.replicas[0].columns.map((c) => c.name)).toEqual(['raMean', 'decMean', 'gMeanPSFMag']);
    expect(data!.dataset.replicas[0].position.ra).toBe('raMean');
  });

  it('filters images by name, software, type and arch', async () => {
    const refs = async (filter: string) =>
      ((await broker.graphql<{ images: { ref: string; site: { id: string } }[] }>(`{ images(filter: ${filter}) { ref site { id } } }`)).data!.images).map((i) => i.ref);
    expect(await refs('{ software: "astropy" }')).toEqual(['images.example.org/astro/astroml:24.07']);
    expect(await refs('{ type: "notebook" }')).toHaveLength(2);
    expect(await refs('{ type: "headless", arch: "amd64" }')).toEqual(['images.example.org/astro/astroml:24.07']);
    expect(await refs('{ arch: "arm64", name: "BASE" }')).toEqual(['images.example.org/astro/base:1.0']);
    expect(await refs('{ software: "tensorflow" }')).toEqual([]);
  });

  it('shows a site with its services, compute, images and document history', async () => {
    const { data } = await broker.graphql<{ site: Record<string, unknown> & { documents: { origin: string; document: { site: { id: string } } }[] } }>(
      `{ site(id: "south") { id status origin seeded services { id type maxRec } compute { id cores freeCores gpus } images { ref }
         replicas { dataset { id } } documents { origin document } } }`);
    expect(data!.site).toMatchObject({ id: 'south', status: 'UNKNOWN', origin: 'PUBLISH', seeded: false,
      services: [{ id: 'tap', type: 'tap', maxRec: 100000 }], compute: [{ id: 'batch', cores: 512, freeCores: 96, gpus: 8 }] });
    expect(data!.site.documents).toHaveLength(1);
    expect(data!.site.documents[0].document.site.id).toBe('south');
  });

  it('answers 100 datasets with replicas, sites and columns in a bounded number of SQL statements', async () => {
    const many = documentFor('many', Array.from({ length: 100 }, (_, i) => ({ id: `bulk.t${String(i).padStart(3, '0')}`, table: `bulk.t${i}` })));
    const put = await fetch(`${broker.url}/sites/many/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(many) });
    expect(put.status).toBe(200);
    // inject runs the request's handlers in this async context, so `statements` gets exactly the
    // request's own statements; a request over a socket would run in the server's context.
    const statements: string[] = [];
    // (inject's answer is lazy: awaiting it inside run() starts the request in that context.)
    const res = await own.run(statements, async () => await broker.app.inject({
      method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ query: `{ datasets(filter: { site: "many" }) { id columns { name } replicas { table site { name services { id } } service { url } columns { name } } } }` }),
    }));
    expect(res.statusCode).toBe(200);
    // The request's read transaction ends when its response is closed, which may come just after
    // inject resolves: wait for that last statement, so every statement of the request is counted.
    await waitUntil(() => statements.at(-1) ?? '', (last) => /^(COMMIT|ROLLBACK)\b/.test(last), { describe: (last) => `the request's transaction never ended (last statement: ${last})` });
    const { data } = res.json<{ data: { datasets: { replicas: { site: { name: string }; columns: { name: string }[]; service: { url: string } }[] }[] } }>();
    expect(data.datasets).toHaveLength(100);
    expect(data.datasets.every((d) => d.replicas[0].columns.length === 2 && d.replicas[0].site.name === 'Site many')).toBe(true);
    // The answer came from the database (not the response cache), and its statements were seen.
    expect(res.headers['x-constellation-cache']).toBeUndefined();
    expect(statements.length).toBeGreaterThan(0);
    // BEGIN + datasets + columns + replicas + (site, service, replica columns) + site services + end of the transaction
    expect(statements.length, statements.join('\n')).toBeLessThanOrEqual(10);
  }, WAITING_TEST_MS);

  it('publishes through the mutation and answers nested fields from the new state', async () => {
    const doc = documentFor('mutant', [{ id: 'mut.one', table: 'mut.one' }]);
    const { data, errors } = await broker.graphql<{ publishCapabilities: { id: string; origin: string; replicas: { table: string }[]; services: { id: string }[] } }>(
      'mutation($d: JSON!) { publishCapabilities(siteId: "mutant", document: $d) { id origin replicas { table } services { id } } }', { d: doc });
    expect(errors).toBeUndefined();
    expect(data!.publishCapabilities).toEqual({ id: 'mutant', origin: 'PUBLISH', replicas: [{ table: 'mut.one' }], services: [{ id: 'tap' }] });
  });

  it('keeps serving after clients abort requests mid-flight', async () => {
    const query = JSON.stringify({ query: '{ datasets { id columns { name } replicas { site { id services { id } } columns { name } } } }' });
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), i % 5);
      await fetch(`${broker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: query, signal: controller.signal })
        .then((r) => r.text()).catch(() => undefined);
    }));
    const answer = await within(broker.graphql<{ sites: unknown[] }>('{ sites { id replicas { table } } }'), 'broker stopped answering after aborted requests');
    expect(answer.data!.sites.length).toBeGreaterThanOrEqual(3);
  }, WAITING_TEST_MS);

  it('moves the registry version when a configured site\'s row changes (another broker starting with a new federation.yaml): cached answers follow', async () => {
    const SITES = '{ sites(limit: 100) { id name url } }';
    const read = async () => {
      const res = await fetch(`${broker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: SITES }) });
      return { cache: res.headers.get('x-constellation-cache'), sites: ((await res.json()) as { data: { sites: { id: string; name: string; url: string }[] } }).data.sites };
    };
    await read();
    expect((await read()).cache).toBe('hit');
    const version = async () => (await broker.db.pool.query<{ version: number }>('SELECT version FROM registry_state')).rows[0].version;
    const before = await version();
    // As declared already: nothing moves, the cached answer stands.
    await upsertConfiguredSite(broker.db.pool, { id: 'north', name: north.site.name, platform: north.site.platform, url: north.site.url ?? '' });
    expect(await version()).toBe(before);
    expect((await read()).cache).toBe('hit');
    // Renamed: one new version, and the broker's answers show the new name once it has followed it.
    await upsertConfiguredSite(broker.db.pool, { id: 'north', name: 'North, renamed', platform: north.site.platform, url: north.site.url ?? '' });
    expect(await version()).toBe(before + 1);
    await waitUntil(read, (r) => r.sites.find((s) => s.id === 'north')?.name === 'North, renamed', { describe: (r) => `north is still ${JSON.stringify(r.sites.find((s) => s.id === 'north'))}` });
    // A new configured site (no document yet) is a new version too.
    await upsertConfiguredSite(broker.db.pool, { id: 'newcomer', name: 'Newcomer', platform: 'tap', url: 'https://newcomer.example.org' });
    expect(await version()).toBe(before + 2);
    await waitUntil(read, (r) => r.sites.some((s) => s.id === 'newcomer'), { describe: (r) => `sites are ${r.sites.map((s) => s.id).join(', ')}` });
  }, WAITING_TEST_MS);

  it('reports 404 for unknown routes and null for unknown ids', async () => {
    expect((await fetch(`${broker.url}/nope`)).status).toBe(404);
    const { data } = await broker.graphql<{ site: null; dataset: null }>(`{ site(id: "nowhere") { id } dataset(id: "no.such") { id } }`);
    expect(data).toEqual({ site: null, dataset: null });
  });

  it('is healthy and ready', async () => {
    expect(await (await fetch(`${broker.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${broker.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  });
});
