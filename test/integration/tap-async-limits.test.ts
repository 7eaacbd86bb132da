/**
 * The TAP facade's async jobs hardened (review of /tap): a sync client that leaves has its job
 * cancelled; anonymous callers hold no async jobs where there is an identity provider; RUN and
 * ABORT racing; the job list filtered in SQL with LAST and PHASE checked; a signed UPLOAD URL
 * nowhere in logs or the database; per-owner caps, clamped times and EXECUTIONDURATION enforced
 * by the clean-up; a query of local tables run at RUN and its result kept. Real brokers, real
 * simulated TAP sites (one holding its jobs QUEUED), a real OpenID provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray, writeVOTableToBuffer } from '../../adapters/ivoa/votable/index.js';
import { ANONYMOUS_IDENTITY } from '../../broker/auth/identity.js';
import { loggableUrl } from '../../broker/http/logging.js';
import { linkStarted } from '../../broker/tap/async-run.js';
import { runInputs, strippedUploadParam } from '../../broker/tap/async-upload.js';
import { abortOverdueTapJobs } from '../../broker/tap/expiry.js';
import { claimTapJobRun } from '../../broker/tap/job-store.js';
import { MAX_EXECUTION_DURATION_S, MAX_LIVE_JOBS_PER_OWNER, MAX_RETENTION_MS, MAX_STORED_BYTES_PER_OWNER } from '../../broker/tap/limits.js';
import { readQueryRequest } from '../../broker/tap/request.js';
import { startQuery } from '../../broker/tap/run.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { capturedLineCount, capturedLines, registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const FAST: SimTable = {
  name: 'fast.src',
  rows: 50,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ],
};
/** A table at a site whose async jobs sit QUEUED for ten minutes: a query of it runs until cancelled. */
const SLOW: SimTable = { ...FAST, name: 'slow.src', rows: 1_000_000_000, heldRows: 50 };

function unescapeXml(s: string): string {
  return s.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
const phaseIn = (xml: string) => /<uws:phase>([A-Z]+)<\/uws:phase>/.exec(xml)?.[1];
const idOf = (url: string) => url.split('/').pop()!;

describe(`the TAP facade's async jobs, hardened (${backend})`, () => {
  let idp: TestOidcProvider;
  let fast: SimSite;
  let slow: SimSite;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};
  const tap = () => `${broker.url}/tap`;
  const auth = (user?: string): Record<string, string> => (user ? { authorization: `Bearer ${tokens[user]}` } : {});
  const get = (url: string, user = 'alice') => fetch(url, { headers: auth(user) });
  const post = (url: string, params: Record<string, string>, user = 'alice') => fetch(url, { method: 'POST', redirect: 'manual', headers: auth(user), body: new URLSearchParams(params) });
  async function createJob(params: Record<string, string>, user = 'alice'): Promise<string> {
    const res = await post(`${tap()}/async`, { LANG: 'ADQL', ...params }, user);
    const text = await res.text();
    expect(res.status, text).toBe(303);
    return res.headers.get('location')!;
  }
  async function errorText(res: Response): Promise<string> {
    const text = await res.text();
    expect(text).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
    return unescapeXml(/value="ERROR">([^<]*)</.exec(text)?.[1] ?? '');
  }
  const phase = async (url: string, user = 'alice') => (await get(`${url}/phase`, user)).text();
  const untilPhase = (url: string, phases: string[], user = 'alice') =>
    waitUntil(async () => (await get(`${url}?WAIT=5`, user)).text(), (x) => phases.includes(phaseIn(x) ?? ''), { describe: (x) => `job ${url}: ${x.slice(0, 500)}` });
  const brokerJob = (id: string) => broker.app.services.jobs.get(id);
  const storedRow = async (url: string) => (await broker.db.pool.query<{ job_id: string | null; phase: string; has_result: boolean; params: string }>('SELECT job_id, phase, result IS NOT NULL AS has_result, params::text AS params FROM tap_jobs WHERE id = $1', [idOf(url)])).rows[0];
  const runContext = () => ({ services: broker.app.services, warn: () => undefined, error: () => undefined, baseUrl: tap() });

  beforeAll(async () => {
    idp = await startOidcProvider();
    fast = new SimSite();
    slow = new SimSite();
    mountTapService(fast, { path: '/tap', tables: [FAST] });
    mountTapService(slow, { path: '/tap', tables: [SLOW], asyncDelayMs: 600_000 });
    await Promise.all([fast.start(), slow.start()]);
    broker = await startBroker(configFromYaml(`
federation: { name: tap-async-limits }
identity: { issuer: ${idp.issuer}, audience: ${BROKER_AUDIENCE}, anonymous: submit }
sites:
  - { id: fast, name: Fast, adapter: tap, url: "${fast.url}/tap" }
  - { id: slow, name: Slow, adapter: tap, url: "${slow.url}/tap" }
`), undefined, { jobs: { pollIntervalMs: 100 } });
    for (const user of ['alice', 'bob', 'carol', 'dave'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    for (const site of ['fast', 'slow']) expect((await broker.harvest(site)).outcome).toBe('OK');
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await Promise.all([fast?.close(), slow?.close()]);
    await idp?.close();
  });

  it('a POST /tap/sync whose client leaves mid-wait has its broker job aborted', async () => {
    const seen = new Set((await broker.db.pool.query<{ id: string }>('SELECT id FROM jobs')).rows.map((r) => r.id));
    const leave = new AbortController();
    const pending = fetch(`${tap()}/sync`, { method: 'POST', headers: auth('alice'), body: new URLSearchParams({ QUERY: 'SELECT source_id FROM slow.src', MAXREC: '10000000' }), signal: leave.signal }).catch((err: unknown) => err);
    // The query's broker job, QUEUED at the slow site.
    const fresh = async () => (await broker.db.pool.query<{ id: string; state: string; site_id: string | null }>('SELECT id, state, site_id FROM jobs')).rows.filter((r) => !seen.has(r.id));
    const jobId = (await waitUntil(fresh, (rows) => rows.some((r) => r.site_id === 'slow' && r.state === 'QUEUED'), { describe: (rows) => `no QUEUED job of the sync query at the slow site: ${JSON.stringify(rows)}` }))[0].id;
    leave.abort();
    await pending;
    const ended = await waitUntil(() => brokerJob(jobId), (j) => j?.state === 'ABORTED', { describe: (j) => `job ${jobId} is ${j?.state}` });
    expect(ended?.state).toBe('ABORTED');
  }, WAITING_TEST_MS);

  it('with an identity provider an anonymous caller holds no async jobs: 401 to create, an empty list, 404 for any job', async () => {
    const refused = await post(`${tap()}/async`, { QUERY: 'SELECT TOP 1 * FROM TAP_SCHEMA.tables', PHASE: 'RUN' }, '');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toMatch(/application\/x-votable\+xml/);
    expect(await errorText(refused)).toMatch(/CONSTELLATION_E_UNAUTHENTICATED: async TAP jobs are kept only for callers who are logged in/);
    // Jobs stored under the anonymous owner (before this change) are invisible to anonymous callers.
    const { rows } = await broker.db.pool.query<{ id: string }>(`INSERT INTO tap_jobs (id, owner, params, execution_duration, destruction) VALUES (gen_random_uuid(), 'anonymous', '{"QUERY":"SELECT 1"}', 60, now() + interval '1 hour') RETURNING id`);
    const list = await (await fetch(`${tap()}/async`)).text();
    expect(list).toContain('<uws:jobs');
    expect(list).not.toContain('jobref');
    for (const path of ['', '/phase', '/parameters', '/error']) expect((await fetch(`${tap()}/async/${rows[0].id}${path}`)).status, path).toBe(404);
    expect((await post(`${tap()}/async/${rows[0].id}/phase`, { PHASE: 'ABORT' }, '')).status).toBe(404);
    expect((await fetch(`${tap()}/async/${rows[0].id}`, { method: 'DELETE', redirect: 'manual' })).status).toBe(404);
    // Sync queries stay open to anonymous callers.
    expect((await fetch(`${tap()}/sync`, { method: 'POST', body: new URLSearchParams({ QUERY: 'SELECT TOP 1 table_name FROM TAP_SCHEMA.tables' }) })).status).toBe(200);
    await broker.db.pool.query('DELETE FROM tap_jobs WHERE id = $1', [rows[0].id]);
  });

  it('without an identity provider (one user) an anonymous caller keeps async jobs as before', async () => {
    const single = await startBroker(configFromYaml(`
federation: { name: tap-single-user }
sites:
  - { id: fast, name: Fast, adapter: tap, url: "${fast.url}/tap" }
`), undefined, { jobs: { pollIntervalMs: 100 } });
    try {
      const res = await fetch(`${single.url}/tap/async`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ QUERY: 'SELECT TOP 2 table_name FROM TAP_SCHEMA.tables' }) });
      expect(res.status).toBe(303);
      const url = res.headers.get('location')!;
      expect(await (await fetch(`${url}/phase`)).text()).toBe('PENDING');
      expect(await (await fetch(`${single.url}/tap/async`)).text()).toContain(idOf(url));
    } finally {
      await single.close();
    }
  }, WAITING_TEST_MS);

  it('an ABORT between RUN\'s claim and its link wins: the job stays ABORTED and what the run started is cancelled', async () => {
    const url = await createJob({ QUERY: 'SELECT source_id FROM slow.src' });
    // The state a RUN leaves between its claim and its link (as on another broker, mid-RUN).
    const claimed = await claimTapJobRun(broker.app.services.pool, idOf(url));
    expect(claimed?.startedAt).toBeInstanceOf(Date);
    expect(await phase(url)).toBe('QUEUED');
    expect(phaseIn(await (await get(url)).text())).toBe('QUEUED');
    expect((await (await get(`${tap()}/async?PHASE=QUEUED`)).text())).toContain(idOf(url));
    // Its parameters are fixed from the claim on, and a second RUN is refused.
    const change = await post(`${url}/parameters`, { QUERY: 'SELECT TOP 1 * FROM TAP_SCHEMA.tables' });
    expect(change.status).toBe(400);
    expect(await errorText(change)).toMatch(/no longer PENDING/);
    expect(JSON.parse((await storedRow(url)).params)).toMatchObject({ QUERY: 'SELECT source_id FROM slow.src' });
    expect((await post(`${url}/phase`, { PHASE: 'RUN' })).status).toBe(400);
    expect(await claimTapJobRun(broker.app.services.pool, idOf(url))).toBeUndefined();
    // ABORT arrives now.
    expect((await post(`${url}/phase`, { PHASE: 'ABORT' })).status).toBe(303);
    expect(await phase(url)).toBe('ABORTED');
    // The run goes on: its query starts a broker job, and the link loses.
    const started = await startQuery(broker.app.services, await readQueryRequest(new Map(Object.entries(claimed!.params)), new Map()), ANONYMOUS_IDENTITY);
    expect(started.kind).toBe('job');
    expect(await linkStarted(runContext(), claimed!, started)).toBe(false);
    if (started.kind === 'job') expect((await brokerJob(started.job.id))?.state).toBe('ABORTED');
    expect(await phase(url)).toBe('ABORTED');
    expect((await storedRow(url)).job_id).toBeNull();
  }, WAITING_TEST_MS);

  it('the job list filters PHASE in SQL (before LAST), reads PHASE from any parameter, and checks LAST and PHASE', async () => {
    const done = await createJob({ QUERY: 'SELECT TOP 1 table_name FROM TAP_SCHEMA.tables', PHASE: 'RUN' }, 'bob');
    expect(phaseIn(await untilPhase(done, ['COMPLETED', 'ERROR', 'ABORTED'], 'bob'))).toBe('COMPLETED');
    const newer = [await createJob({ QUERY: 'SELECT 1 FROM fast.src' }, 'bob'), await createJob({ QUERY: 'SELECT 2 FROM fast.src' }, 'bob')];
    const list = async (query: string) => {
      const res = await get(`${tap()}/async${query}`, 'bob');
      return { status: res.status, text: await res.text() };
    };
    const ids = (text: string) => [...text.matchAll(/<uws:jobref id="([^"]+)"/g)].map((m) => m[1]);
    expect(ids((await list('?LAST=1&PHASE=COMPLETED')).text)).toEqual([idOf(done)]);
    expect(ids((await list('?last=1&phase=completed')).text)).toEqual([idOf(done)]);
    expect(new Set(ids((await list('?PHASE=PENDING&PHASE=COMPLETED')).text))).toEqual(new Set([idOf(done), ...newer.map(idOf)]));
    expect(ids((await list('?PHASE=PENDING&LAST=1')).text)).toEqual([idOf(newer[1])]);
    expect(ids((await list('?PHASE=HELD')).text)).toEqual([]);
    const huge = await list('?LAST=100000000000000000000');
    expect(huge.status).toBe(200);
    expect(ids(huge.text)).toHaveLength(3);
    for (const [query, message] of [
      ['?LAST=1e20', /LAST must be a positive integer, not "1e20"/],
      ['?LAST=0', /LAST must be a positive integer/],
      ['?LAST=-1', /LAST must be a positive integer/],
      ['?PHASE=RUNNING', /PHASE "RUNNING" is not a UWS phase/],
      ['?PHASE=COMPLETED&PHASE=%3Cx%3E', /PHASE "<x>" is not a UWS phase/],
      ['?AFTER=yesterday', /AFTER "yesterday" is not an ISO 8601 time/],
    ] as const) {
      const res = await list(query);
      expect(res.status, query).toBe(400);
      expect(unescapeXml(res.text), query).toMatch(message);
    }
  }, WAITING_TEST_MS);

  it('a signed UPLOAD URL reaches neither the logs nor the database', async () => {
    const signature = `sig${'0123456789abcdef'.repeat(2)}SECRET`;
    registerSecret(signature);
    const signed = `http://user:pass${signature}@127.0.0.1:9/t.xml?X-Amz-Signature=${signature}&expires=1`;
    const linesBefore = capturedLineCount();
    // In the query string of sync and async requests, and in an async request's body.
    await (await fetch(`${tap()}/sync?QUERY=${encodeURIComponent('SELECT * FROM TAP_UPLOAD.t')}&UPLOAD=${encodeURIComponent(`t,${signed}`)}`)).text();
    const inQuery = await fetch(`${tap()}/async?QUERY=${encodeURIComponent('SELECT * FROM TAP_UPLOAD.t')}&UPLOAD=${encodeURIComponent(`t,${signed}`)}`, { method: 'POST', headers: auth('alice'), redirect: 'manual' });
    // The table is read when the parameter is given (here refused: a loopback address), so no job is made.
    expect(inQuery.status).toBe(400);
    expect(await errorText(inQuery)).toMatch(/UPLOAD t: the table at 127\.0\.0\.1:9 could not be read/);
    const inBody = await post(`${tap()}/async`, { QUERY: 'SELECT * FROM TAP_UPLOAD.t', UPLOAD: `t,${signed}` });
    expect(inBody.status).toBe(400);
    const pending = await createJob({ QUERY: 'SELECT * FROM TAP_UPLOAD.t' });
    expect((await post(`${pending}/parameters`, { UPLOAD: `t,${signed}` })).status).toBe(400);
    expect(capturedLineCount()).toBeGreaterThan(linesBefore);
    expect(capturedLines(new RegExp(signature))).toEqual([]);
    expect(capturedLines(/X-Amz-Signature/)).toEqual([]);
    const stored = await broker.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM tap_jobs WHERE params::text LIKE $1 OR coalesce(error_message, '') LIKE $1`, [`%${signature}%`]);
    expect(stored.rows[0].n).toBe(0);
    // What a job keeps of an UPLOAD URL, and what a log line keeps of one, whatever the spelling.
    expect(strippedUploadParam(`t,${signed}`)).toBe('t,http://127.0.0.1:9/t.xml');
    expect(strippedUploadParam(`a,param:p;b,HTTPS://u@h.example/x?s=1#frag`)).toBe('a,param:p;b,https://h.example/x');
    expect(runInputs({ params: { UPLOAD: 't,https://h.example/x' }, uploadName: 't', uploadVotable: '<VOTABLE/>' }).values.get('UPLOAD')).toBe('t,param:t');
    for (const url of [
      `/tap/sync?UPLOAD=t,${encodeURIComponent(signed)}`,
      `/tap/sync?UPLOAD=${encodeURIComponent(`t,${signed}`)}&QUERY=x`,
      `/tap/sync?upload=t%2Chttps%3A%2F%2Fh.example%2Fx%3Fsig%3D${signature}%ZZ`,
      `/tap/sync?UPLOAD=t,https://h.example/x?sig=${signature}`,
    ]) {
      const logged = loggableUrl(url);
      expect(logged, url).not.toContain(signature);
      expect(logged.startsWith('/tap/sync?')).toBe(true);
    }
    expect(loggableUrl('/tap/sync?QUERY=SELECT%201&LANG=ADQL')).toBe('/tap/sync?QUERY=SELECT%201&LANG=ADQL');
  }, WAITING_TEST_MS);

  it('clamps DESTRUCTION and EXECUTIONDURATION, and refuses bad values naming the parameter', async () => {
    const url = await createJob({ QUERY: 'SELECT 1 FROM fast.src' });
    expect((await post(`${url}/destruction`, { DESTRUCTION: '2999-01-01T00:00:00Z' })).status).toBe(303);
    const kept = new Date(await (await get(`${url}/destruction`)).text()).getTime();
    expect(kept).toBeLessThanOrEqual(Date.now() + MAX_RETENTION_MS);
    expect(kept).toBeGreaterThan(Date.now() + MAX_RETENTION_MS - 600_000);
    expect(await (await get(url)).text()).toContain(`<uws:destruction>${new Date(kept).toISOString()}</uws:destruction>`);
    for (const [value, keptAs] of [['0', MAX_EXECUTION_DURATION_S], ['100000000000000000000000000000', MAX_EXECUTION_DURATION_S], [String(MAX_EXECUTION_DURATION_S + 1), MAX_EXECUTION_DURATION_S], ['120', 120]] as const) {
      expect((await post(`${url}/executionduration`, { EXECUTIONDURATION: value })).status).toBe(303);
      expect(await (await get(`${url}/executionduration`)).text(), value).toBe(String(keptAs));
    }
    for (const [path, params, message] of [
      ['/executionduration', { EXECUTIONDURATION: '-1' }, /EXECUTIONDURATION must be a non-negative whole number of seconds/],
      ['/executionduration', { EXECUTIONDURATION: '1.5' }, /EXECUTIONDURATION must be/],
      ['/executionduration', {}, /EXECUTIONDURATION must be/],
      ['/destruction', { DESTRUCTION: 'tomorrow' }, /DESTRUCTION must be an ISO 8601 time/],
      ['/destruction', { DESTRUCTION: '2024-13-45T99:00:00Z' }, /DESTRUCTION must be an ISO 8601 time/],
    ] as const) {
      const res = await post(`${url}${path}`, params);
      expect(res.status, JSON.stringify(params)).toBe(400);
      expect(await errorText(res)).toMatch(message);
    }
    expect(await (await get(`${url}/executionduration`)).text()).toBe('120');
  });

  it('refuses a job over the per-owner cap with a coded VOTable error, and takes one again once a job is deleted', async () => {
    const made: string[] = [];
    // Concurrent creations in batches: the owner's lock keeps the count exact.
    for (let i = 0; i < MAX_LIVE_JOBS_PER_OWNER; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => post(`${tap()}/async`, { QUERY: 'SELECT 1 FROM fast.src' }, 'carol')));
      for (const res of batch) {
        await res.text();
        if (res.status === 303) made.push(res.headers.get('location')!);
      }
    }
    expect(made).toHaveLength(MAX_LIVE_JOBS_PER_OWNER);
    const over = await Promise.all([1, 2, 3].map(() => post(`${tap()}/async`, { QUERY: 'SELECT 1 FROM fast.src' }, 'carol')));
    for (const res of over) {
      expect(res.status).toBe(429);
      expect(await errorText(res)).toMatch(new RegExp(`CONSTELLATION_E_QUOTA_EXCEEDED: you hold ${MAX_LIVE_JOBS_PER_OWNER} async TAP jobs, the most one caller may keep`));
    }
    expect(ids(await (await get(`${tap()}/async`, 'carol')).text())).toHaveLength(MAX_LIVE_JOBS_PER_OWNER);
    // Another owner is not affected.
    await createJob({ QUERY: 'SELECT 1 FROM fast.src' }, 'bob');
    expect((await fetch(made[0], { method: 'DELETE', redirect: 'manual', headers: auth('carol') })).status).toBe(303);
    expect((await post(`${tap()}/async`, { QUERY: 'SELECT 1 FROM fast.src' }, 'carol')).status).toBe(303);
    await broker.db.pool.query('DELETE FROM tap_jobs WHERE id = ANY($1::uuid[])', [made.map(idOf)]);
  }, WAITING_TEST_MS);

  it('refuses an upload that would take the owner past the bytes their jobs may keep, keeping what is stored', async () => {
    const first = await createJob({ QUERY: 'SELECT 1 FROM fast.src' }, 'dave');
    // The owner's jobs already keep all but 1000 bytes of their share (made in the database: no need to send 128 MB).
    await broker.db.pool.query(`UPDATE tap_jobs SET upload_name = 'u', upload_votable = repeat('x', $2) WHERE id = $1`, [idOf(first), MAX_STORED_BYTES_PER_OWNER - 1000]);
    const upload = await writeVOTableToBuffer({ fields: [{ name: 'k', datatype: 'int' }] }, Array.from({ length: 200 }, (_, i) => [i]), { serialization: 'TABLEDATA' });
    expect(upload.byteLength).toBeGreaterThan(1000);
    const withUpload = () => {
      const form = new FormData();
      form.set('QUERY', 'SELECT * FROM TAP_UPLOAD.t');
      form.set('UPLOAD', 't,param:u');
      form.set('u', new Blob([upload]), 't.xml');
      return form;
    };
    const refused = await fetch(`${tap()}/async`, { method: 'POST', headers: auth('dave'), body: withUpload(), redirect: 'manual' });
    expect(refused.status).toBe(429);
    expect(await errorText(refused)).toMatch(new RegExp(`CONSTELLATION_E_QUOTA_EXCEEDED: your async TAP jobs keep ${MAX_STORED_BYTES_PER_OWNER - 1000} bytes of uploads and results; with this upload of ${upload.byteLength} bytes they would pass the ${MAX_STORED_BYTES_PER_OWNER} bytes`));
    // The same through a PENDING job's parameters; the job keeps its parameters as they were.
    const second = await createJob({ QUERY: 'SELECT 2 FROM fast.src' }, 'dave');
    const changed = await fetch(`${second}/parameters`, { method: 'POST', headers: auth('dave'), body: withUpload(), redirect: 'manual' });
    expect(changed.status).toBe(429);
    expect(JSON.parse((await storedRow(second)).params)).toEqual({ LANG: 'ADQL', QUERY: 'SELECT 2 FROM fast.src' });
    expect(ids(await (await get(`${tap()}/async`, 'dave')).text())).toHaveLength(2);
    // Deleting the big job frees the share.
    expect((await fetch(first, { method: 'DELETE', redirect: 'manual', headers: auth('dave') })).status).toBe(303);
    expect((await fetch(`${tap()}/async`, { method: 'POST', headers: auth('dave'), body: withUpload(), redirect: 'manual' })).status).toBe(303);
  }, WAITING_TEST_MS);

  it('the clean-up aborts jobs running past their EXECUTIONDURATION, once, whichever broker runs it', async () => {
    const running = await createJob({ QUERY: 'SELECT source_id FROM slow.src', PHASE: 'RUN' });
    expect(await phase(running)).toBe('QUEUED');
    const claimedOnly = await createJob({ QUERY: 'SELECT source_id FROM slow.src' });
    await claimTapJobRun(broker.app.services.pool, idOf(claimedOnly));
    const notDue = await createJob({ QUERY: 'SELECT source_id FROM slow.src', PHASE: 'RUN' });
    for (const url of [running, claimedOnly]) expect((await post(`${url}/executionduration`, { EXECUTIONDURATION: '1' })).status).toBe(303);
    // Due once the database's clock is a second past their start.
    await waitUntil(async () => (await broker.db.pool.query<{ due: boolean }>(`SELECT bool_and(started_at + interval '1 second' < now()) AS due FROM tap_jobs WHERE id = ANY($1::uuid[])`, [[idOf(running), idOf(claimedOnly)]])).rows[0].due, (due) => due === true);
    // Two clean-ups at once (as two brokers): each job is aborted by one of them.
    const counts = await Promise.all([abortOverdueTapJobs(broker.app.services), abortOverdueTapJobs(broker.app.services)]);
    expect(counts[0] + counts[1]).toBe(2);
    expect(await abortOverdueTapJobs(broker.app.services)).toBe(0);
    const jobId = (await storedRow(running)).job_id!;
    expect((await brokerJob(jobId))?.state).toBe('ABORTED');
    expect(await phase(running)).toBe('ABORTED');
    expect(await phase(claimedOnly)).toBe('ABORTED');
    expect(unescapeXml(await (await get(`${claimedOnly}/error`)).text())).toMatch(/ran past its EXECUTIONDURATION of 1 s/);
    expect(await phase(notDue)).toBe('QUEUED');
    expect((await post(`${notDue}/phase`, { PHASE: 'ABORT' })).status).toBe(303);
  }, WAITING_TEST_MS);

  it('runs a query of local tables at RUN and keeps its result; its failure is the job\'s ERROR; a result over the byte cap fails clearly', async () => {
    const url = await createJob({ QUERY: 'SELECT TOP 3 table_name FROM TAP_SCHEMA.tables ORDER BY table_name', PHASE: 'RUN' });
    const done = await untilPhase(url, ['COMPLETED', 'ERROR', 'ABORTED']);
    expect(phaseIn(done), done).toBe('COMPLETED');
    expect((await storedRow(url)).has_result).toBe(true);
    const read = async () => new Uint8Array(await (await get(`${url}/results/result`)).arrayBuffer());
    const first = await read();
    expect((await readVOTableToArray([first])).tables[0].rows).toHaveLength(3);
    expect(Buffer.from(await read()).equals(Buffer.from(first))).toBe(true);
    expect((await get(`${url}/results/result`, 'bob')).status).toBe(404);
    // A big result: a cross join of an uploaded table with itself, more than 16 MB of rows.
    const wide = 'x'.repeat(300);
    const upload = await writeVOTableToBuffer({ fields: [{ name: 'k', datatype: 'int' }, { name: 's', datatype: 'char', arraysize: '*' }] }, Array.from({ length: 400 }, (_, i) => [i, wide]), { serialization: 'TABLEDATA' });
    const form = new FormData();
    form.set('QUERY', 'SELECT a.s, b.s, a.k, b.k FROM TAP_UPLOAD.t AS a CROSS JOIN TAP_UPLOAD.t AS b');
    form.set('UPLOAD', 't,param:u');
    form.set('u', new Blob([upload]), 't.xml');
    form.set('PHASE', 'RUN');
    const big = await fetch(`${tap()}/async`, { method: 'POST', headers: auth('alice'), body: form, redirect: 'manual' });
    expect(big.status, await big.clone().text()).toBe(303);
    const bigUrl = big.headers.get('location')!;
    const bigDone = await untilPhase(bigUrl, ['COMPLETED', 'ERROR', 'ABORTED']);
    expect(phaseIn(bigDone), bigDone.slice(0, 600)).toBe('ERROR');
    expect(unescapeXml(bigDone)).toMatch(/larger than 16777216 bytes, the most this service keeps of a query of its own tables/);
    expect((await storedRow(bigUrl)).has_result).toBe(false);
  }, WAITING_TEST_MS);
});

function ids(text: string): string[] {
  return [...text.matchAll(/<uws:jobref id="([^"]+)"/g)].map((m) => m[1]);
}
