/**
 * The federation as one TAP 1.1 service (/tap), against simulated TAP sites and a real OpenID
 * provider: VOSI, TAP_SCHEMA per caller, sync and async (UWS 1.1) queries that run as broker
 * jobs, MAXREC overflow, every RESPONSEFORMAT, inline uploads, DALI examples that run, owner-only
 * jobs, and the bad-input list, each a VOTable error document with nothing sent to a site.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray, writeVOTableToBuffer } from '../../adapters/ivoa/votable/index.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const GAIA: SimTable = {
  name: 'gaia.src',
  description: 'Gaia-like sources',
  rows: 400,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag' },
  ],
};
const PS1: SimTable = {
  name: 'ps1.obj',
  rows: 300,
  position: { ra: 'ramean', dec: 'decmean' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'objid', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ramean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'decmean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ],
};

const FINAL = ['COMPLETED', 'ERROR', 'ABORTED'];

function unescapeXml(s: string): string {
  return s.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

describe(`the TAP facade (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let beta: SimSite;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};
  const tap = () => `${broker.url}/tap`;
  const auth = (user?: string): Record<string, string> => (user ? { authorization: `Bearer ${tokens[user]}` } : {});
  /** Requests that reached a site's TAP query endpoints (sync or async). */
  const queriesAtSites = () => [...alpha.seen, ...beta.seen].filter((r) => /\/tap\/(sync|async)/.test(r.url)).length;

  async function sync(params: Record<string, string>, user?: string): Promise<Response> {
    return fetch(`${tap()}/sync`, { method: 'POST', headers: auth(user), body: new URLSearchParams({ LANG: 'ADQL', ...params }) });
  }
  async function errorOf(res: Response): Promise<string> {
    const text = await res.text();
    expect(text).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
    return unescapeXml(/value="ERROR">([^<]*)</.exec(text)![1]);
  }

  beforeAll(async () => {
    idp = await startOidcProvider();
    alpha = new SimSite();
    beta = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA], maxRec: 100_000, uploadLimitBytes: 10_000_000 });
    mountTapService(beta, { path: '/tap', tables: [PS1], maxRec: 100_000 });
    await Promise.all([alpha.start(), beta.start()]);
    broker = await startBroker(configFromYaml(`
federation: { name: tap-facade }
registration: { open: true }
identity: { issuer: ${idp.issuer}, audience: ${BROKER_AUDIENCE}, anonymous: submit }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - { id: beta, name: Beta, adapter: tap, url: "${beta.url}/tap" }
`), undefined, { jobs: { pollIntervalMs: 100 } });
    for (const user of ['alice', 'bob'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    for (const site of ['alpha', 'beta']) expect((await broker.harvest(site)).outcome).toBe('OK');
    // A protected replica, for the gaia-team group only (alice is in it, bob is not).
    const doc = documentFor('vault', [{ id: 'secret.targets', table: 'vault.targets', access: { public: false, groups: ['gaia-team'] } }]);
    await broker.app.services.publisher.publish('vault', doc, 'publish');
    await broker.app.services.planner.refresh(broker.app.services.pool);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await Promise.all([alpha?.close(), beta?.close()]);
    await idp?.close();
  });

  it('answers VOSI capabilities (TAPRegExt), availability and tables', async () => {
    const caps = await (await fetch(`${tap()}/capabilities`)).text();
    expect(caps).toContain('standardID="ivo://ivoa.net/std/TAP"');
    expect(caps).toContain('<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>');
    expect(caps).toContain('ivo://ivoa.net/std/TAPRegExt#upload-inline');
    expect(caps).toMatch(/<outputLimit><default unit="row">\d+<\/default><hard unit="row">\d+<\/hard><\/outputLimit>/);
    for (const mime of ['serialization=BINARY2', 'serialization=TABLEDATA', 'text/csv', 'text/tab-separated-values', 'application/json']) expect(caps).toContain(mime);
    expect(await (await fetch(`${tap()}/availability`)).text()).toContain('<vosi:available>true</vosi:available>');
    const tables = await (await fetch(`${tap()}/tables`)).text();
    expect(tables).toContain('<name>gaia.src</name>');
    expect(tables).toContain('<name>TAP_SCHEMA.columns</name>');
  });

  it('lists a protected dataset in TAP_SCHEMA and /tables only for callers in its group', async () => {
    const names = async (user?: string) => {
      const res = await sync({ QUERY: 'SELECT table_name FROM TAP_SCHEMA.tables' }, user);
      expect(res.status).toBe(200);
      return (await readVOTableToArray([new Uint8Array(await res.arrayBuffer())])).tables[0].rows.map((r) => r[0]);
    };
    expect(await names('alice')).toContain('secret.targets');
    expect(await names('bob')).not.toContain('secret.targets');
    expect(await names()).not.toContain('secret.targets');
    expect(await names()).toEqual(expect.arrayContaining(['gaia.src', 'ps1.obj', 'TAP_SCHEMA.tables', 'TAP_SCHEMA.columns']));
    expect(await (await fetch(`${tap()}/tables`, { headers: auth('bob') })).text()).not.toContain('secret.targets');
    expect(await (await fetch(`${tap()}/tables`, { headers: auth('alice') })).text()).toContain('secret.targets');
    // To bob the protected table does not exist.
    const refused = await sync({ QUERY: 'SELECT * FROM secret.targets' }, 'bob');
    expect(refused.status).toBe(400);
    expect(await errorOf(refused)).toMatch(/secret\.targets.*does not know/);
  });

  it('runs a sync query as a broker job at the site holding the table, with MAXREC overflow flagged', async () => {
    const res = await sync({ QUERY: 'SELECT source_id, ra, dec FROM gaia.src', MAXREC: '25' });
    expect(res.status).toBe(200);
    const doc = await readVOTableToArray([new Uint8Array(await res.arrayBuffer())]);
    expect(doc.tables[0].rows).toHaveLength(25);
    expect(doc.overflow).toBe(true);
    const jobs = await broker.app.services.jobs.list('anonymous', { limit: 50, offset: 0 });
    expect(jobs.some((j) => j.siteId === 'alpha' && (j.request as { via?: string }).via === 'tap')).toBe(true);
  }, WAITING_TEST_MS);

  it('writes every RESPONSEFORMAT', async () => {
    const q = { QUERY: 'SELECT TOP 3 source_id, mag FROM gaia.src ORDER BY source_id' };
    const td = await sync({ ...q, RESPONSEFORMAT: 'application/x-votable+xml;serialization=TABLEDATA' });
    expect(await td.text()).toContain('<TABLEDATA>');
    const b2 = await sync({ ...q, RESPONSEFORMAT: 'votable/b2' });
    expect(await b2.text()).toContain('<BINARY2>');
    const csv = await sync({ ...q, RESPONSEFORMAT: 'csv' });
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    expect((await csv.text()).trim().split(/\r?\n/)).toHaveLength(4);
    const tsv = await sync({ ...q, RESPONSEFORMAT: 'text/tab-separated-values' });
    expect((await tsv.text()).split('\n')[0]).toBe('source_id\tmag');
    const json = await sync({ ...q, RESPONSEFORMAT: 'application/json' });
    const body = (await json.json()) as { metadata: { name: string }[]; data: unknown[][] };
    expect(body.metadata.map((m) => m.name)).toEqual(['source_id', 'mag']);
    expect(body.data).toHaveLength(3);
  }, WAITING_TEST_MS);

  it('sends an inline upload to the site with the query, and runs a query of uploads alone in the broker', async () => {
    const upload = await writeVOTableToBuffer({ fields: [{ name: 'uid', datatype: 'int' }, { name: 'ra', datatype: 'double' }, { name: 'dec', datatype: 'double' }] }, [[1, 15, 5], [2, 12, 3]], { serialization: 'TABLEDATA' });
    const form = (query: string) => {
      const f = new FormData();
      f.set('LANG', 'ADQL');
      f.set('QUERY', query);
      f.set('UPLOAD', 'pos,param:t');
      f.set('t', new Blob([upload]), 'pos.xml');
      return f;
    };
    const joined = await fetch(`${tap()}/sync`, { method: 'POST', body: form('SELECT u.uid, g.source_id FROM TAP_UPLOAD.pos AS u JOIN gaia.src AS g ON 1 = CONTAINS(POINT(\'ICRS\', g.ra, g.dec), CIRCLE(\'ICRS\', u.ra, u.dec, 1.0))') });
    expect(joined.status).toBe(200);
    const rows = (await readVOTableToArray([new Uint8Array(await joined.arrayBuffer())])).tables[0].rows;
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set([1, 2]));
    const before = queriesAtSites();
    const alone = await fetch(`${tap()}/sync`, { method: 'POST', body: form('SELECT uid FROM TAP_UPLOAD.pos ORDER BY uid') });
    expect((await readVOTableToArray([new Uint8Array(await alone.arrayBuffer())])).tables[0].rows).toEqual([[1], [2]]);
    expect(queriesAtSites()).toBe(before);
  }, WAITING_TEST_MS);

  it('a hostile upload column name is only ever a name: no SQL of the caller\'s runs in the broker\'s database', async () => {
    // A FIELD name closing the quoted identifier and appending statements (found in review: the
    // temporary table of a query of uploads alone was created from unquoted names, several
    // statements allowed, and committed).
    const evil = 'a" text); create table tap_injected (x int); create temp table "z" ("y';
    const upload = await writeVOTableToBuffer({ fields: [{ name: evil, datatype: 'int' }] }, [[1]], { serialization: 'TABLEDATA' });
    const f = new FormData();
    f.set('QUERY', 'SELECT * FROM TAP_UPLOAD.t');
    f.set('UPLOAD', 't,param:u');
    f.set('u', new Blob([upload]), 't.xml');
    const res = await fetch(`${tap()}/sync`, { method: 'POST', body: f });
    await res.arrayBuffer();
    const made = await broker.app.services.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'tap_injected'`);
    expect(made.rows[0].n).toBe(0);
    // Refused or answered with the name as it is: either way nothing else ran.
    expect([200, 400]).toContain(res.status);
  }, WAITING_TEST_MS);

  it('refuses bad input with a VOTable error document and the right status, sending nothing to a site', async () => {
    const before = queriesAtSites();
    const cases: [Record<string, string>, number, RegExp][] = [
      [{ QUERY: 'SELEKT * FROM gaia.src' }, 400, /not valid ADQL/],
      [{ QUERY: 'SELECT * FROM nowhere.nothing' }, 400, /nowhere\.nothing.*does not know/],
      [{ QUERY: 'SELECT nosuchcol FROM gaia.src' }, 400, /column nosuchcol.*does not exist/],
      [{ QUERY: 'SELECT g.nosuch FROM gaia.src AS g' }, 400, /gaia\.src has no column nosuch/],
      [{ QUERY: 'SELECT * FROM gaia.src', MAXREC: '-3' }, 400, /MAXREC must be a non-negative integer/],
      [{ QUERY: 'SELECT * FROM gaia.src', MAXREC: 'lots' }, 400, /MAXREC/],
      [{ QUERY: 'SELECT * FROM gaia.src', RESPONSEFORMAT: 'application/fits' }, 400, /RESPONSEFORMAT "application\/fits" is not a format/],
      [{ QUERY: 'SELECT * FROM gaia.src', LANG: 'SQL' }, 400, /LANG "SQL"/],
      [{ QUERY: 'SELECT g.source_id FROM gaia.src AS g JOIN ps1.obj AS p ON g.source_id = p.objid' }, 400, /no one site holds together \(gaia\.src is held at alpha; ps1\.obj is held at beta\)/],
      [{ QUERY: 'SELECT * FROM TAP_UPLOAD.missing' }, 400, /no table "missing" was uploaded/],
    ];
    for (const [params, status, message] of cases) {
      const res = await sync(params);
      expect(res.status, JSON.stringify(params)).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/application\/x-votable\+xml/);
      expect(await errorOf(res), JSON.stringify(params)).toMatch(message);
    }
    const notVotable = new FormData();
    notVotable.set('QUERY', 'SELECT * FROM TAP_UPLOAD.pos');
    notVotable.set('UPLOAD', 'pos,param:t');
    notVotable.set('t', new Blob(['ra,dec\n1,2\n']), 'pos.csv');
    const bad = await fetch(`${tap()}/sync`, { method: 'POST', body: notVotable });
    expect(bad.status).toBe(400);
    expect(await errorOf(bad)).toMatch(/UPLOAD pos is not a VOTable/);
    const huge = new FormData();
    huge.set('QUERY', 'SELECT * FROM TAP_UPLOAD.pos');
    huge.set('UPLOAD', 'pos,param:t');
    huge.set('t', new Blob([`<VOTABLE>${' '.repeat(8 * 1024 * 1024)}</VOTABLE>`]), 'pos.xml');
    const big = await fetch(`${tap()}/sync`, { method: 'POST', body: huge });
    expect(big.status).toBe(413);
    expect(await errorOf(big)).toMatch(/at most \d+ bytes/);
    const private_ = await sync({ QUERY: 'SELECT * FROM TAP_UPLOAD.pos', UPLOAD: `pos,${alpha.url}/tap/tables` });
    expect(private_.status).toBe(400);
    expect(await errorOf(private_)).toMatch(/UPLOAD pos: the table at 127\.0\.0\.1:\d+ could not be read/);
    expect(queriesAtSites()).toBe(before);
  }, WAITING_TEST_MS);

  it('runs async jobs through UWS 1.1: PENDING until RUN, WAIT, results, the job list filters, DELETE; owner-only', async () => {
    const created = await fetch(`${tap()}/async`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ LANG: 'ADQL', QUERY: 'SELECT TOP 5 source_id FROM gaia.src ORDER BY source_id', RUNID: 'mine' }), redirect: 'manual' });
    expect(created.status).toBe(303);
    const url = created.headers.get('location')!;
    const jobXml = async (suffix = '', user = 'alice') => (await fetch(`${url}${suffix}`, { headers: auth(user) })).text();
    expect(await jobXml('/phase')).toBe('PENDING');
    expect(await jobXml()).toContain('<uws:runId>mine</uws:runId>');
    // Another user, and an anonymous caller, do not see it.
    expect((await fetch(url, { headers: auth('bob') })).status).toBe(404);
    expect((await fetch(url)).status).toBe(404);
    const setDuration = await fetch(`${url}/executionduration`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ EXECUTIONDURATION: '120' }), redirect: 'manual' });
    expect(setDuration.status).toBe(303);
    expect(await jobXml('/executionduration')).toBe('120');
    const when = new Date(Date.now() + 3_600_000).toISOString();
    await fetch(`${url}/destruction`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ DESTRUCTION: when }), redirect: 'manual' });
    expect(new Date(await jobXml('/destruction')).getTime()).toBe(new Date(when).getTime());
    const pending = await (await fetch(`${tap()}/async?PHASE=PENDING`, { headers: auth('alice') })).text();
    expect(pending).toContain(url.split('/').pop()!);
    const run = await fetch(`${url}/phase`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ PHASE: 'RUN' }), redirect: 'manual' });
    expect(run.status).toBe(303);
    const done = await waitUntil(() => jobXml('?WAIT=5'), (x) => FINAL.some((p) => x.includes(`<uws:phase>${p}</uws:phase>`)), { describe: (x) => x.slice(0, 300) });
    expect(done).toContain('<uws:phase>COMPLETED</uws:phase>');
    const result = await fetch(`${url}/results/result`, { headers: auth('alice') });
    expect((await readVOTableToArray([new Uint8Array(await result.arrayBuffer())])).tables[0].rows).toHaveLength(5);
    expect((await fetch(`${url}/results/result`, { headers: auth('bob') })).status).toBe(404);
    expect(await (await fetch(`${tap()}/async?PHASE=COMPLETED&LAST=1`, { headers: auth('alice') })).text()).toContain(url.split('/').pop()!);
    expect(await (await fetch(`${tap()}/async`, { headers: auth('bob') })).text()).not.toContain(url.split('/').pop()!);
    expect(await (await fetch(`${tap()}/async?AFTER=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { headers: auth('alice') })).text()).not.toContain('jobref');
    // Bob cannot delete it; alice can.
    expect((await fetch(url, { method: 'DELETE', headers: auth('bob'), redirect: 'manual' })).status).toBe(404);
    expect((await fetch(url, { method: 'DELETE', headers: auth('alice'), redirect: 'manual' })).status).toBe(303);
    expect((await fetch(url, { headers: auth('alice') })).status).toBe(404);
  }, WAITING_TEST_MS);

  it('reports a refused async query as the job\'s ERROR, with an error document, sending nothing', async () => {
    const before = queriesAtSites();
    const created = await fetch(`${tap()}/async`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ LANG: 'ADQL', QUERY: 'SELECT nosuch FROM gaia.src', PHASE: 'RUN' }), redirect: 'manual' });
    const url = created.headers.get('location')!;
    const get = (u: string) => fetch(u, { headers: auth('alice') });
    expect(await (await get(`${url}/phase`)).text()).toBe('ERROR');
    expect(await (await get(url)).text()).toMatch(/<uws:errorSummary type="fatal" hasDetail="true"><uws:message>[^<]*column nosuch/);
    expect(await (await get(`${url}/error`)).text()).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
    const aborted = await fetch(`${tap()}/async`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ QUERY: 'SELECT * FROM gaia.src' }), redirect: 'manual' });
    const abortUrl = aborted.headers.get('location')!;
    await fetch(`${abortUrl}/phase`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ PHASE: 'ABORT' }), redirect: 'manual' });
    expect(await (await get(`${abortUrl}/phase`)).text()).toBe('ABORTED');
    expect(queriesAtSites()).toBe(before);
  });

  it('serves DALI examples, each of which runs', async () => {
    const page = await (await fetch(`${tap()}/examples`)).text();
    expect(page).toContain('vocab="http://www.ivoa.net/rdf/examples#"');
    const queries = [...page.matchAll(/property="query">([^<]*)</g)].map((m) => unescapeXml(m[1]));
    expect(queries.length).toBeGreaterThanOrEqual(4);
    for (const q of queries) {
      const res = await sync({ QUERY: q });
      expect(res.status, `${q}: ${res.status}`).toBe(200);
      const doc = await readVOTableToArray([new Uint8Array(await res.arrayBuffer())]);
      expect(doc.status, q).not.toBe('ERROR');
    }
  }, WAITING_TEST_MS);
});
