/**
 * Issue 9, the job slice, against a real broker and a simulated TAP site on loopback: a query
 * cannot reach a table behind the planner's back (findings 6), results are served only as the
 * broker's own VOTable/CSV/JSON (7), a sync result is kept and served again, never re-run (8),
 * job leases outlast the requests they cover (11, 15), a hanging site's /results fails fast (14),
 * and a submit during a database outage answers DATABASE (12).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { parseConfig } from '../../broker/config/load.js';
import { JobService } from '../../broker/jobs/service.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const STARS: SimTable = {
  name: 'pub.stars',
  rows: 60,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double' },
    { name: 'dec', datatype: 'double' },
  ],
};
const SECRET: SimTable = { name: 'priv.secret', rows: 10, columns: [{ name: 'source_id', datatype: 'long' }, { name: 'password', datatype: 'char' }] };
// Advertised as huge, so an unbounded query on it runs as an async (UWS) job.
const PHOTO: SimTable = { name: 'big.photo', rows: 900_000, heldRows: 40, columns: [{ name: 'objid', datatype: 'long' }, { name: 'mag', datatype: 'double' }] };

const SYNC_ADQL = 'SELECT TOP 5 source_id, ra, dec FROM pub.stars ORDER BY source_id';
const ASYNC_ADQL = 'SELECT objid, mag FROM big.photo';
const HTML = '<!DOCTYPE html><html><body><script>fetch("/graphql").then(r=>r.text()).then(t=>alert(t))</script></body></html>';

interface JobView { id: string; state: string; error: { code: string; message: string } | null; results: string | null }
const JOB_FIELDS = 'id state error { code message } results';

describe(`hostile jobs (${backend})`, () => {
  let site: SimSite;
  let tap: TapService;
  let broker: TestBroker;
  let http: HttpClient;
  /** While set, the site labels every result it sends text/html. */
  let labelHtml = false;
  /** While set, the site never answers a request for an async job's result (until released). */
  let hangResults = false;
  /** While set, the site holds every sync query until released. */
  let holdSync = false;
  const released: (() => void)[] = [];
  const hold = () => new Promise<void>((resolve) => released.push(resolve));

  const isResult = (url: string) => /\/tap\/sync|\/tap\/async\/[^/]+\/results\/result/.test(url);
  const queriesSent = () => site.seen.filter((r) => r.method === 'POST' && /\/tap\/(sync|async)(\?|$)/.test(r.url)).length;
  const syncQueries = () => site.seen.filter((r) => r.method === 'POST' && /\/tap\/sync(\?|$)/.test(r.url)).length;

  async function submit(input: Record<string, unknown>) {
    return broker.graphql<{ submitQuery: JobView }>(`mutation($input: QueryInput!) { submitQuery(input: $input) { ${JOB_FIELDS} } }`, { input });
  }
  async function finished(id: string): Promise<JobView> {
    return waitUntil(
      async () => (await broker.graphql<{ job: JobView }>(`{ job(id: "${id}") { ${JOB_FIELDS} } }`)).data!.job,
      (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state),
      { describe: (j) => `job ${id} still ${j.state}` },
    );
  }

  beforeAll(async () => {
    site = new SimSite();
    tap = mountTapService(site, { path: '/tap', tables: [STARS, SECRET, PHOTO], asyncDelayMs: 20 });
    site.app.addHook('onRequest', async (request) => {
      if (hangResults && /\/results\/result/.test(request.url)) await hold();
      if (holdSync && request.method === 'POST' && /\/tap\/sync/.test(request.url)) await hold();
    });
    site.app.addHook('onSend', async (request, reply, payload) => {
      if (labelHtml && isResult(request.url)) reply.header('content-type', 'text/html; charset=utf-8');
      return payload;
    });
    await site.start();
    http = new HttpClient({ retries: 0, connectTimeoutMs: 10_000, headersTimeoutMs: 20_000, bodyTimeoutMs: 20_000 });
    broker = await startBroker(configFromYaml(`
federation: { name: hostile-jobs }
# A development federation: the test republishes the site's document without a token.
registration: { open: true }
results: { firstByteTimeoutS: 1 }
sites:
  - { id: hs, name: Hostile site, adapter: tap, url: "${site.url}/tap" }
`), undefined, { http, jobs: { pollIntervalMs: 50, tickMs: 25, backoffBaseMs: 50, backoffMaxMs: 200 } });
    expect((await broker.harvest('hs')).outcome).toBe('OK');
    // The site says its secret table is for one group only (the caller is anonymous).
    const current = (await (await fetch(`${broker.url}/sites/hs/capabilities`)).json()) as Record<string, unknown>;
    const doc = (current.document ?? current) as { datasets: { id: string; access: unknown }[]; asOf: string };
    const secret = doc.datasets.find((d) => d.id === 'priv.secret')!;
    secret.access = { public: false, groups: ['secret-team'] };
    doc.asOf = new Date().toISOString();
    const put = await fetch(`${broker.url}/sites/hs/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });
    expect(put.status, await put.clone().text()).toBeLessThan(300);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    released.splice(0).forEach((r) => r());
    await broker?.close();
    await http?.close();
    await tap?.close();
    await site?.close();
  });

  it('finding 6: a private table in FROM behind a public `datasets` is refused, and the site receives nothing', async () => {
    const before = queriesSent();
    for (const adql of ['SELECT * FROM priv.secret', 'SELECT source_id FROM pub.stars WHERE EXISTS (SELECT 1 FROM priv.secret AS s WHERE s.source_id = 1)']) {
      const { data, errors } = await submit({ adql, datasets: ['pub.stars'] });
      expect(data?.submitQuery ?? null, adql).toBeNull();
      expect(errors?.[0].extensions?.code, adql).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
      expect(errors?.[0].extensions?.violations, adql).toContainEqual(expect.objectContaining({ path: 'candidates/hs/priv.secret', rule: 'FORBIDDEN' }));
    }
    expect(queriesSent()).toBe(before);
  });

  it('finding 6: TAP_SCHEMA, TAP_UPLOAD or an unknown table anywhere in the tree is refused with its position', async () => {
    const before = queriesSent();
    const cases: [string, RegExp][] = [
      ['SELECT ra FROM pub.stars WHERE source_id IN (SELECT 1 FROM tap_schema.tables)', /reads tap_schema\.tables \(line 1, column \d+\): TAP_SCHEMA/],
      ['SELECT ra FROM pub.stars\nUNION ALL SELECT ra FROM "TAP_SCHEMA".columns', /"TAP_SCHEMA"\.columns \(line 2, column \d+\): TAP_SCHEMA describes/],
      ['SELECT ra FROM pub.stars WHERE EXISTS (SELECT 1 FROM tap_upload.mine)', /tap_upload\.mine .*TAP_UPLOAD/],
      ['SELECT ra FROM pub.stars UNION SELECT ra FROM (SELECT ra FROM nowhere.hidden) AS h', /nowhere\.hidden \(line 1, column \d+\), which is not a dataset of the federation/],
    ];
    for (const [adql, message] of cases) {
      const { errors } = await submit({ adql, datasets: ['pub.stars'] });
      expect(errors?.[0].extensions?.code, adql).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
      expect(errors?.[0].message, adql).toMatch(message);
    }
    expect(queriesSent()).toBe(before);
  });

  it('finding 8: a sync result is kept: 20 GETs after the submit send no query to the site, in every format', async () => {
    const submitted = syncQueries();
    const { data, errors } = await submit({ adql: SYNC_ADQL, idempotencyKey: 'kept-once' });
    expect(errors).toBeUndefined();
    const job = await finished(data!.submitQuery.id);
    expect(job.state).toBe('COMPLETED');
    // The submit sends the query (a read, which a loaded machine may send again before it is
    // kept); the finding is about what the GETs do.
    expect(syncQueries()).toBeGreaterThan(submitted);
    const before = syncQueries();
    const expected = simRows(STARS).map((r) => r[0]).sort((a, b) => ((a as bigint) < (b as bigint) ? -1 : 1)).slice(0, 5);
    const formats = ['votable', 'csv', 'json'];
    for (let i = 0; i < 20; i++) {
      const format = formats[i % 3];
      const res = await fetch(`${broker.url}/results/${job.id}?format=${format}`);
      expect(res.status, format).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${job.id}.${format === 'votable' ? 'xml' : format}"`);
      const body = Buffer.from(await res.arrayBuffer());
      if (format === 'votable') {
        expect(res.headers.get('content-type')).toBe('application/x-votable+xml');
        expect((await readVOTableToArray([body])).tables[0].rows.map((r) => r[0])).toEqual(expected);
      } else if (format === 'csv') {
        expect(body.toString().trim().split('\r\n')).toHaveLength(6);
      } else {
        expect((JSON.parse(body.toString()) as { data: unknown[] }).data).toHaveLength(5);
      }
    }
    expect(syncQueries()).toBe(before);
  }, WAITING_TEST_MS);

  it('finding 8: an expired result answers 410 RESULT_EXPIRED saying when, and is not run again', async () => {
    const { data } = await submit({ adql: SYNC_ADQL, idempotencyKey: 'expires' });
    const job = await finished(data!.submitQuery.id);
    expect(job.state).toBe('COMPLETED');
    expect((await fetch(`${broker.url}/results/${job.id}`)).status).toBe(200);
    const before = syncQueries();
    await broker.db.pool.query(`UPDATE job_results SET expires_at = now() - interval '1 hour' WHERE job_id = $1`, [job.id]);
    // Past its expiry it is refused at once, and the clean-up then removes its bytes.
    const early = await fetch(`${broker.url}/results/${job.id}`);
    expect(early.status).toBe(410);
    expect(await broker.app.services.jobs.expireResults()).toBeGreaterThanOrEqual(1);
    const { rows } = await broker.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM job_result_chunks WHERE job_id = $1', [job.id]);
    expect(rows[0].n).toBe(0);
    const res = await fetch(`${broker.url}/results/${job.id}?format=csv`);
    expect(res.status).toBe(410);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe('CONSTELLATION_E_RESULT_EXPIRED');
    expect(body.message).toMatch(/expired at \d{4}-\d\d-\d\dT/);
    expect(syncQueries()).toBe(before);
  }, WAITING_TEST_MS);

  it('finding 7: a site\'s HTML is never served: refused as a result, a VOTable labelled HTML is served as VOTable, headers on every page', async () => {
    // An async job whose result is an HTML page labelled text/html: refused before any byte.
    tap.hostile.result = () => HTML;
    labelHtml = true;
    try {
      const { data } = await submit({ adql: ASYNC_ADQL });
      const job = await finished(data!.submitQuery.id);
      expect(job.state).toBe('COMPLETED');
      for (const format of ['votable', 'csv', 'json']) {
        const res = await fetch(`${broker.url}/results/${job.id}?format=${format}`);
        const text = await res.text();
        expect(res.status, format).toBe(502);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(JSON.parse(text).code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
        expect(text).not.toContain('<script');
      }
      // The same page as a sync answer: the site's submit fails, nothing is kept.
      const sync = await submit({ adql: SYNC_ADQL, idempotencyKey: 'html-sync' });
      const failed = await finished(sync.data!.submitQuery.id);
      expect(failed.state).toBe('ERROR');
      expect(failed.error?.code).toBe('CONSTELLATION_E_UPSTREAM_MALFORMED');
      // HTML without the label (a site that says VOTable): still not a VOTable, still refused.
      labelHtml = false;
      const unlabelled = await fetch(`${broker.url}/results/${job.id}`);
      expect(unlabelled.status).toBe(502);
      // A real VOTable labelled text/html: served, as the broker's own type and as a download.
      delete tap.hostile.result;
      labelHtml = true;
      const honest = await finished((await submit({ adql: ASYNC_ADQL, idempotencyKey: 'labelled-html' })).data!.submitQuery.id);
      const res = await fetch(`${broker.url}/results/${honest.id}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-votable+xml');
      expect(res.headers.get('content-disposition')).toMatch(/^attachment; /);
      expect((await readVOTableToArray([Buffer.from(await res.arrayBuffer())])).tables[0].rows).toHaveLength(PHOTO.heldRows!);
    } finally {
      delete tap.hostile.result;
      labelHtml = false;
    }
    // Security headers on every page; GraphiQL keeps its own CSP.
    for (const path of ['/healthz', '/graphql?query=%7B__typename%7D', '/no/such/page', '/graphiql']) {
      const res = await fetch(`${broker.url}${path}`);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      const csp = res.headers.get('content-security-policy') ?? '';
      if (path === '/graphiql') expect(csp).toMatch(/script-src/);
      else expect(csp).toBe("frame-ancestors 'none'");
    }
  }, WAITING_TEST_MS);

  it('finding 14: a site that sends no byte of a result gets 504 UPSTREAM_TIMEOUT within the bound (results.firstByteTimeoutS 1)', async () => {
    const { data } = await submit({ adql: ASYNC_ADQL, idempotencyKey: 'hanging' });
    const job = await finished(data!.submitQuery.id);
    expect(job.state).toBe('COMPLETED');
    hangResults = true;
    try {
      const started = Date.now();
      const res = await fetch(`${broker.url}/results/${job.id}?format=csv`);
      const elapsed = Date.now() - started;
      expect(res.status).toBe(504);
      expect(((await res.json()) as { code: string }).code).toBe('CONSTELLATION_E_UPSTREAM_TIMEOUT');
      // 1 s bound; the rest is slack for a loaded 2-core machine, far below the 40-60 s before.
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(8_000);
    } finally {
      hangResults = false;
      released.splice(0).forEach((r) => r());
    }
  }, WAITING_TEST_MS);

  it('finding 15: a submit holds its lease for the submit deadline plus 2 s (42 s), not 150 s', async () => {
    holdSync = true;
    const pending = submit({ adql: SYNC_ADQL, idempotencyKey: 'lease' });
    try {
      const row = await waitUntil(
        async () => (await broker.db.pool.query<{ span: number }>(
          `SELECT extract(epoch FROM lease_until - submitted_at)::float8 AS span FROM jobs WHERE idempotency_key = 'lease' AND submitted_at IS NOT NULL`)).rows[0],
        (r) => r !== undefined,
        { describe: () => 'the submit never reached the site' },
      );
      expect(row.span).toBeGreaterThan(40);
      expect(row.span).toBeLessThanOrEqual(42.5);
    } finally {
      holdSync = false;
      released.splice(0).forEach((r) => r());
    }
    const { data } = await pending;
    expect((await finished(data!.submitQuery.id)).state).toBe('COMPLETED');
  }, WAITING_TEST_MS);
});

describe('finding 11: the poll lease always outlasts the poll it covers', () => {
  const yaml = (jobs: string) => `federation: { name: x }\njobs: ${jobs}\nsites: []\n`;

  it('refuses leaseS below the request timeout plus the margin, naming the path and the minimum', () => {
    const err = (() => {
      try {
        parseConfig(yaml('{ leaseS: 10, requestTimeoutS: 30 }'));
      } catch (e) {
        return e;
      }
    })();
    expect(isConstellationError(err) && err.kind).toBe('INVALID_CONFIG');
    if (!isConstellationError(err)) return;
    expect(err.violations).toContainEqual(expect.objectContaining({ path: 'jobs.leaseS (line 2)', rule: 'lease' }));
    expect(err.message).toMatch(/the minimum is 32/);
  });

  it('derives one from the other', () => {
    expect(parseConfig(yaml('{}')).jobs).toMatchObject({ leaseS: 30, requestTimeoutS: 28, submitTimeoutS: 40 });
    expect(parseConfig(yaml('{ leaseS: 5 }')).jobs).toMatchObject({ leaseS: 5, requestTimeoutS: 3 });
    expect(parseConfig(yaml('{ requestTimeoutS: 60 }')).jobs).toMatchObject({ leaseS: 62, requestTimeoutS: 60 });
    expect(parseConfig(yaml('{ leaseS: 62, requestTimeoutS: 60 }')).jobs.leaseS).toBe(62);
    // The service itself refuses the same mistake made in code.
    expect(() => new JobService({} as pg.Pool, () => { throw new Error('unused'); }, { leaseMs: 5_000, requestTimeoutMs: 30_000 })).toThrow(/must be at least 32000 ms/);
  });
});

describe(`finding 12: a submit during a database outage (${backend})`, () => {
  // The embedded PGlite server runs inside this test process and is the database the harness
  // itself must close: it cannot be taken away from under the broker without faking the outage.
  it.skipIf(!process.env.DATABASE_URL)('answers CONSTELLATION_E_DATABASE (503), not INTERNAL', async () => {
    const db = await freshDatabase();
    const lone = new SimSite();
    mountTapService(lone, { path: '/tap', tables: [STARS] });
    await lone.start();
    const broker = await startBroker(configFromYaml(`
federation: { name: outage }
sites:
  - { id: lone, name: Lone, adapter: tap, url: "${lone.url}/tap" }
`), db);
    try {
      expect((await broker.harvest('lone')).outcome).toBe('OK');
      // The database goes away under the broker: its sessions are terminated and it is gone.
      const name = new URL(db.url!).pathname.slice(1);
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
      for (const mutation of ['submitQuery(input: { adql: "SELECT TOP 5 source_id FROM pub.stars" })', 'submitJob(input: { image: "x", command: "true", cores: 1, memoryGb: 1, walltimeS: 60, idempotencyKey: "outage" })']) {
        const res = await broker.graphql(`mutation { ${mutation} { id } }`);
        expect(res.errors?.[0].extensions?.code, mutation).toBe('CONSTELLATION_E_DATABASE');
      }
      const rest = await fetch(`${broker.url}/results/00000000-0000-0000-0000-000000000000`);
      expect(rest.status).toBe(503);
      expect(((await rest.json()) as { code: string }).code).toBe('CONSTELLATION_E_DATABASE');
    } finally {
      await broker.close();
      await lone.close();
      await db.close();
    }
  }, WAITING_TEST_MS);
});
