/**
 * Route and run over GraphQL: queries and container jobs submitted to a real broker, planned,
 * rewritten and run at simulated sites that speak TAP/UWS and skaha, then followed to the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { CanfarSite } from '../sites/canfar-site.js';
import { SciserverSite } from '../sites/sciserver-site.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { SubscriptionClient } from '../support/subscriptions.js';
import { PATIENCE_MS, WAITING_TEST_MS, waitUntil } from '../support/wait.js';

// The same catalogue at two sites, spelt differently at each. Both advertise 50,000 rows (so
// whole-table queries run async) and hold 300 to query.
const ALPHA: SimTable = {
  name: 'gaiadr3.gaia_source',
  rows: 50_000,
  heldRows: 300,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'phot_g_mean_mag', datatype: 'double', unit: 'mag' },
  ],
};
const BETA: SimTable = {
  ...ALPHA,
  name: 'gaia.src',
  position: { ra: 'ra_deg', dec: 'dec_deg' },
  columns: [
    { name: 'sid', datatype: 'long' },
    { name: 'ra_deg', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec_deg', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'gmag', datatype: 'double', unit: 'mag' },
  ],
};

// A survey only gamma holds, whose jobs sit queued at gamma far longer than any test runs: a
// query there is still running whenever the test gets to cancel it, however slow the machine.
const HELD: SimTable = { ...ALPHA, name: 'heldsurvey.sources' };
const HELD_QUEUE_MS = 600_000;

// Simulated container jobs (skaha sessions, JOBM jobs) stay in each phase for HOLD_MS, far longer
// than any test: a test moves a job into its next phase once the broker has recorded the current
// one, so the broker sees every phase however slowly the machine runs (a poller sampling phases of
// a few hundred ms misses some on a loaded machine).
const HOLD_MS = 600_000;

const JOB_FIELDS = `id kind state site { id } siteJobId sitePhase results plan { candidates { kind siteId ... on QueryCandidate { siteQuery { adql mode service } } ... on ContainerCandidate { siteJob { image } } } plan { chosen } } candidateIndex unreachableSince
  error { code message } history { from to site errorCode message }`;

interface JobView {
  id: string;
  kind: string;
  state: string;
  site: { id: string } | null;
  siteJobId: string | null;
  sitePhase: string | null;
  results: string | null;
  plan: { candidates: { siteId: string; siteQuery?: { adql: string; mode: string; service: string }; siteJob?: { image: string } }[]; plan: { chosen: string } };
  candidateIndex: number;
  error: { code: string; message: string } | null;
  history: { from: string | null; to: string; site: string | null; errorCode: string | null; message: string | null }[];
}

describe(`route and run over GraphQL (${backend})`, () => {
  let alpha: SimSite;
  let beta: SimSite;
  let gamma: SimSite;
  let gammaTap: TapService;
  /** While set, alpha holds the creation of each async job (POST /tap/async) until it resolves. */
  let holdCreation: Promise<void> | undefined;
  let canfar: CanfarSite;
  let sciserver: SciserverSite;
  let broker: TestBroker;
  let http: HttpClient;

  const submitQuery = (input: Record<string, unknown>) =>
    broker.graphql<{ submitQuery: JobView }>(`mutation($i: QueryInput!) { submitQuery(input: $i) { ${JOB_FIELDS} } }`, { i: input });
  const job = async (id: string) => (await broker.graphql<{ job: JobView }>(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id })).data!.job;
  /** Poll the job over GraphQL until `done`; the limit (PATIENCE_MS) only guards against a job that never moves on. */
  const until = (id: string, done: (j: JobView) => boolean): Promise<JobView> =>
    waitUntil(() => job(id), done, { describe: (j) => `job ${id} is still ${j.state}: ${JSON.stringify(j.history)}` });
  const finished = (j: JobView) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state);
  /**
   * Submit `input` (a query alpha will run) and follow its job with a subscription on `followUrl`
   * from its first state: alpha holds the job's creation until the subscriber has that state, so
   * the subscriber sees every transition however slowly the machine runs (a job that finished
   * before the subscription started would show only its end). The job is found by its ADQL, which
   * must be new to this file.
   */
  const submitAndFollow = async (input: { adql: string } & Record<string, unknown>, followUrl = broker.url): Promise<{ submitted: JobView; states: string[] }> => {
    let release = () => {};
    holdCreation = new Promise<void>((resolve) => (release = resolve));
    try {
      const answer = submitQuery(input);
      const id = await waitUntil(
        async () => (await broker.graphql<{ jobs: { id: string; request: { adql?: string } }[] }>('{ jobs(limit: 50) { id request } }')).data!.jobs.find((j) => j.request.adql === input.adql)?.id,
        (found) => found !== undefined,
        { describe: () => `no job was created for ${input.adql}` },
      );
      const client = await SubscriptionClient.connect(followUrl);
      let states: string[];
      try {
        states = (await client.run<{ jobUpdated: { state: string } }>('subscription($id: ID!) { jobUpdated(id: $id) { state } }', { id }, PATIENCE_MS, () => release()))
          .map((m) => m.jobUpdated.state);
      } finally {
        client.close();
      }
      const { data, errors } = await answer;
      expect(errors).toBeUndefined();
      return { submitted: data!.submitQuery, states };
    } finally {
      release();
      holdCreation = undefined;
    }
  };
  /** Make the simulated `siteJob` `phases` phase-lengths old, then wait until the broker records `state` (or a final one). */
  const enter = async (id: string, siteJob: { createdAt: number }, phases: number, state: string): Promise<JobView> => {
    siteJob.createdAt = Date.now() - phases * HOLD_MS;
    const j = await until(id, (x) => x.state === state || finished(x));
    expect(j.state, JSON.stringify(j.history)).toBe(state);
    return j;
  };
  const asyncPosts = (site: SimSite) => site.seen.filter((r) => r.method === 'POST' && /\/tap\/async$/.test(r.url.split('?')[0])).length;

  beforeAll(async () => {
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [ALPHA], asyncDelayMs: 300 });
    alpha.app.addHook('onRequest', async (request) => {
      if (holdCreation && request.method === 'POST' && request.url.split('?')[0] === '/tap/async') await holdCreation;
    });
    await alpha.start();
    beta = new SimSite();
    mountTapService(beta, { path: '/tap', tables: [BETA], asyncDelayMs: 300 });
    await beta.start();
    gamma = new SimSite();
    gammaTap = mountTapService(gamma, { path: '/tap', tables: [HELD], asyncDelayMs: HELD_QUEUE_MS });
    await gamma.start();
    canfar = await new CanfarSite({ pendingMs: HOLD_MS, runningMs: HOLD_MS }).start();
    sciserver = await new SciserverSite({ stepMs: HOLD_MS }).start();
    // alpha is preferred, so it is tried first whenever both can run a query.
    const yaml = `
federation: { name: route-and-run }
harvest: { concurrency: 3, jitterS: 0, timeoutS: 20 }
sites:
  - id: alpha
    name: Alpha
    adapter: tap
    url: "${alpha.url}/tap"
    preference: 2
  - id: beta
    name: Beta
    adapter: tap
    url: "${beta.url}/tap"
    datasets:
      gaia.src: { id: gaiadr3.gaia_source, columns: { sid: source_id, ra_deg: ra, dec_deg: dec, gmag: phot_g_mean_mag } }
  - id: gamma
    name: Gamma
    adapter: tap
    url: "${gamma.url}/tap"
  - id: canfar
    name: CANFAR
    adapter: canfar
    url: "${canfar.registryUrl}"
    credentials: { strategy: linked, env: TEST_CANFAR_TOKEN }
    options:
      resources: { skaha: "ivo://cadc.nrc.ca/skaha", argus: "ivo://cadc.nrc.ca/argus" }
  - id: sciserver
    name: SciServer
    adapter: sciserver
    url: "${sciserver.url}"
    credentials: { strategy: linked, env: TEST_SCISERVER_TOKEN, header: X-Auth-Token }
    options:
      loginUrl: "${sciserver.url}/login-portal/keystone/v3/tokens"
      racmUrl: "${sciserver.url}/racm"
      casjobsUrl: "${sciserver.url}/CasJobs/RestApi"
      casjobsContexts: [DR17]
      computeDomains: { small-jobs: testComputeDomain1 }
      computeCapacity: { small-jobs: { cores: 96, memoryGb: 384, maxCoresPerJob: 4, maxMemoryGbPerJob: 16 } }
    datasets:
      dbo.PhotoObjAll: { id: sdss_dr17.photoobjall, columns: { objID: objid } }
`;
    // No test here needs a site call to time out (faults are 503s and refused connections), so the
    // timeouts are generous: a slow machine must not turn a poll into "unreachable".
    http = new HttpClient({ retries: 0, connectTimeoutMs: 10_000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    broker = await startBroker(configFromYaml(yaml), undefined, {
      http,
      env: { TEST_CANFAR_TOKEN: canfar.token, TEST_SCISERVER_TOKEN: sciserver.token },
      jobs: { pollIntervalMs: 50, tickMs: 25, requestTimeoutMs: 25_000, backoffBaseMs: 50, backoffMaxMs: 200 },
    });
    for (const id of ['alpha', 'beta', 'gamma', 'canfar', 'sciserver']) {
      expect(await broker.harvest(id), id).toMatchObject({ outcome: 'OK' });
    }
    // A TAP simulator boots its own query engine (an in-process PGlite) on its first query, which
    // takes long on a loaded machine: beta's first query is synchronous, inside a submit, so beta's
    // engine boots here. Alpha's boots in its first (async) job, whose EXECUTING phase it stretches
    // so that the broker sees that phase for certain (warm, a query ends within milliseconds).
    const res = await fetch(`${beta.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT TOP 1 sid FROM ${BETA.name}` }) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
    await http?.close();
    // Closing gamma's service clears the timers of its held jobs.
    await gammaTap?.close();
    await Promise.all([alpha?.close(), beta?.close(), gamma?.close(), canfar?.close(), sciserver?.close()]);
  });

  it('runs a small query synchronously at the named site, in that site\'s own table and column names', async () => {
    const adql = `SELECT TOP 5 g.source_id, g.ra AS "RA", phot_g_mean_mag -- from gaiadr3.gaia_source
      FROM gaiadr3.gaia_source AS g
      WHERE 'gaiadr3.gaia_source.ra' <> '' /* g.ra is gaiadr3.gaia_source.ra */ ORDER BY g.source_id`;
    const { data, errors } = await submitQuery({ adql, site: 'beta', format: 'csv' });
    expect(errors).toBeUndefined();
    const submitted = data!.submitQuery;
    const sent = submitted.plan.candidates[0].siteQuery!;
    expect(sent.mode).toBe('sync');
    expect(sent.adql).toContain('FROM gaia.src AS g');
    // Renamed columns keep the name the user asked for in the result.
    expect(sent.adql).toContain('g.sid AS source_id');
    expect(sent.adql).toContain('g.ra_deg AS "RA"');
    expect(sent.adql).toContain('gmag AS phot_g_mean_mag');
    expect(sent.adql).toContain('ORDER BY g.sid');
    // The literal that spells a table name is data, not a name: it is left as written.
    expect(sent.adql).toContain(`'gaiadr3.gaia_source.ra'`);
    const done = await until(submitted.id, finished);
    expect(done).toMatchObject({ state: 'COMPLETED', site: { id: 'beta' }, results: `/results/${submitted.id}?format=csv` });
    const res = await fetch(`${broker.url}${done.results}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const [header, ...lines] = (await res.text()).trim().split('\r\n');
    expect(header).toBe('source_id,RA,phot_g_mean_mag');
    const expected = simRows(BETA).sort((a, b) => ((a[0] as bigint) < (b[0] as bigint) ? -1 : 1)).slice(0, 5);
    expect(lines.map((l) => l.split(',')[0])).toEqual(expected.map((r) => String(r[0])));
    lines.forEach((l, i) => {
      const [, ra, mag] = l.split(',').map(Number);
      expect(ra).toBeCloseTo(expected[i][1] as number, 9);
      expect(mag).toBeCloseTo(expected[i][3] as number, 9);
    });
    // A synchronous answer is kept by the broker: asking again serves it; the site is not asked again.
    const syncCalls = beta.seen.filter((r) => r.url.startsWith('/tap/sync')).length;
    const again = (await (await fetch(`${broker.url}/results/${submitted.id}?format=json`)).json()) as { data: unknown[][] };
    expect(again.data.map((r) => String(r[0]))).toEqual(expected.map((r) => String(r[0])));
    expect(beta.seen.filter((r) => r.url.startsWith('/tap/sync')).length).toBe(syncCalls);
  }, WAITING_TEST_MS);

  it('runs a large query asynchronously where the plan puts it, pushing every transition to a subscriber', async () => {
    const { submitted, states } = await submitAndFollow({ adql: 'SELECT source_id, ra, dec FROM gaiadr3.gaia_source WHERE ra < 15' });
    expect(submitted.plan.plan.chosen).toBe('alpha');
    expect(submitted.plan.candidates.map((c) => c.siteId)).toEqual(['alpha', 'beta']);
    expect(submitted.plan.candidates[0].siteQuery!.mode).toBe('async');
    expect(states.at(-1)).toBe('COMPLETED');
    expect(states).toContain('EXECUTING');
    const done = await job(submitted.id);
    expect(done.history.map((h) => h.to)).toEqual(expect.arrayContaining(['PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED']));
    const votable = await fetch(`${broker.url}${done.results}`);
    expect(votable.headers.get('content-type')).toMatch(/votable|xml/);
    const { tables } = await readVOTableToArray([new Uint8Array(await votable.arrayBuffer())]);
    expect(tables[0].rows.map((r) => r[0])).toEqual(simRows(ALPHA).filter((r) => (r[1] as number) < 15).map((r) => r[0]));
    const json = (await (await fetch(`${broker.url}/results/${done.id}?format=json`)).json()) as { metadata: { name: string }[]; data: unknown[][] };
    expect(json.metadata.map((m) => m.name)).toEqual(['source_id', 'ra', 'dec']);
    expect(json.data.length).toBe(tables[0].rows.length);
  }, WAITING_TEST_MS);

  it('returns the same job for a retried submit with the same key, and refuses the key for another request', async () => {
    const input = { adql: 'SELECT source_id FROM gaiadr3.gaia_source WHERE dec > 5', idempotencyKey: 'retry-me-1' };
    const before = asyncPosts(alpha);
    const [first, second] = await Promise.all([submitQuery(input), submitQuery(input)]);
    const third = await submitQuery(input);
    expect(first.errors).toBeUndefined();
    expect(second.data!.submitQuery.id).toBe(first.data!.submitQuery.id);
    expect(third.data!.submitQuery.id).toBe(first.data!.submitQuery.id);
    await until(first.data!.submitQuery.id, finished);
    expect(asyncPosts(alpha) - before).toBe(1);
    const reused = await submitQuery({ ...input, adql: 'SELECT ra FROM gaiadr3.gaia_source' });
    expect(reused.errors![0].extensions!.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(reused.errors![0].message).toContain(first.data!.submitQuery.id);
  }, WAITING_TEST_MS);

  it('moves the job to the next site when the first answers 503, and records why', async () => {
    await alpha.setFault({ kind: 'status', status: 503 });
    try {
      const { data, errors } = await submitQuery({ adql: 'SELECT source_id, ra FROM gaiadr3.gaia_source' });
      expect(errors).toBeUndefined();
      const done = await until(data!.submitQuery.id, finished);
      expect(done).toMatchObject({ state: 'COMPLETED', site: { id: 'beta' }, candidateIndex: 1 });
      const failure = done.history.find((h) => h.errorCode);
      expect(failure).toMatchObject({ from: 'PENDING', to: 'PENDING', site: 'alpha' });
      expect(failure!.message).toMatch(/503/);
    } finally {
      await alpha.setFault({ kind: 'none' });
    }
  }, WAITING_TEST_MS);

  it('runs a query on SDSS at SciServer through CasJobs, translated to T-SQL, and records a dialect refusal', async () => {
    const { data, errors } = await submitQuery({ adql: 'SELECT TOP 2 p.objid, p.ra FROM sdss_dr17.photoobjall AS p ORDER BY p.objid', format: 'json' });
    expect(errors).toBeUndefined();
    const done = await until(data!.submitQuery.id, finished);
    expect(done).toMatchObject({ state: 'COMPLETED', site: { id: 'sciserver' } });
    const sent = sciserver.casjobsQueries.at(-1)!;
    expect(sent.context).toBe('DR17');
    // CasJobs lists tables without columns, and SQL Server matches names regardless of case.
    expect(sent.query).toMatch(/^SELECT TOP 2 p\.objid, p\.ra FROM dbo\.PhotoObjAll AS p ORDER BY p\.objid/);
    const text = await (await fetch(`${broker.url}${done.results}`)).text();
    const json = JSON.parse(text) as { metadata: { name: string }[]; data: unknown[][] };
    // SQL Server names a bare column as the table declares it.
    expect(json.metadata.map((m) => m.name)).toEqual(['objID', 'ra']);
    // 64-bit SDSS ids survive JSON → VOTable → JSON exactly (JSON.parse here would round them).
    expect(json.data).toHaveLength(2);
    expect(text).toMatch(/\[1237648720693755918,[^\]]*\],\s*\[1237648720693755919,/);

    const cone = await submitQuery({ adql: "SELECT objid FROM sdss_dr17.photoobjall WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 195, 2.5, 0.1))" });
    const refused = await until(cone.data!.submitQuery.id, finished);
    expect(refused.state).toBe('ERROR');
    expect(refused.error!.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(refused.error!.message).toMatch(/sciserver: .*CONTAINS.*line 1, column \d+/);
  }, WAITING_TEST_MS);

  it('cancels a running query at its site', async () => {
    const { data } = await submitQuery({ adql: 'SELECT * FROM heldsurvey.sources', site: 'gamma' });
    const id = data!.submitQuery.id;
    const cancelled = await broker.graphql<{ cancelJob: JobView }>(`mutation { cancelJob(id: "${id}") { state } }`);
    expect(cancelled.data!.cancelJob.state).toBe('ABORTED');
    const siteJob = data!.submitQuery.siteJobId!;
    const atSite = await fetch(`${siteJob}/phase`);
    expect(await atSite.text()).toBe('ABORTED');

    // A site that cannot be reached cannot be asked to abort: the call says so and the job is kept.
    const second = (await submitQuery({ adql: 'SELECT * FROM heldsurvey.sources', site: 'gamma' })).data!.submitQuery;
    await gamma.setFault({ kind: 'refuse' });
    try {
      const refused = await broker.graphql(`mutation { cancelJob(id: "${second.id}") { state } }`);
      expect(refused.errors![0].extensions!.code).toBe('CONSTELLATION_E_UPSTREAM_UNAVAILABLE');
      expect(refused.errors![0].message).toMatch(/could not ask gamma to abort .* still (QUEUED|EXECUTING); try again/);
      expect((await job(second.id)).state).not.toBe('ABORTED');
    } finally {
      await gamma.setFault({ kind: 'none' });
    }
    expect((await broker.graphql<{ cancelJob: { state: string } }>(`mutation { cancelJob(id: "${second.id}") { state } }`)).data!.cancelJob.state).toBe('ABORTED');
  }, WAITING_TEST_MS);

  it('refuses with clear reasons: unknown tables, TAP_SCHEMA, bad ADQL, a site without the data', async () => {
    const unknown = await submitQuery({ adql: 'SELECT x FROM\n  no_such.catalogue' });
    expect(unknown.errors![0].extensions!.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(unknown.errors![0].message).toContain('no_such.catalogue (line 2, column 3)');
    const schema = await submitQuery({ adql: 'SELECT * FROM TAP_SCHEMA.tables' });
    expect(schema.errors![0].message).toMatch(/TAP_SCHEMA/);
    const syntax = await submitQuery({ adql: 'SELECT FROM WHERE' });
    expect(syntax.errors![0].extensions!.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    const nowhere = await submitQuery({ adql: 'SELECT ra FROM gaiadr3.gaia_source', site: 'canfar' });
    expect(nowhere.errors![0].extensions!.code).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
    expect(nowhere.errors![0].extensions!.violations).toContainEqual(expect.objectContaining({ path: 'candidates/canfar/gaiadr3.gaia_source', rule: 'NO_REPLICA' }));
    const badMaxrec = await submitQuery({ adql: 'SELECT ra FROM gaiadr3.gaia_source', maxrec: -1 });
    expect(badMaxrec.errors![0].extensions!.violations![0].path).toBe('input.maxrec');
    // Nothing was stored for any of them.
    const { data } = await broker.graphql<{ jobs: { id: string; request: { adql: string } }[] }>('{ jobs(limit: 500) { id request } }');
    expect(data!.jobs.some((j) => /no_such|TAP_SCHEMA|WHERE$/.test(j.request.adql))).toBe(false);
  });

  it('runs a container job on the site with the image and capacity, and says why others could not', async () => {
    const { data, errors } = await broker.graphql<{ submitJob: JobView }>(
      `mutation($i: ContainerJobInput!) { submitJob(input: $i) { ${JOB_FIELDS} } }`,
      { i: { image: 'images.canfar.net/skaha/terminal:1.1.2', command: 'python', args: ['-c', 'print(42)'], env: [{ name: 'MODE', value: 'test' }], cores: 1, memoryGb: 2 } },
    );
    expect(errors).toBeUndefined();
    expect(data!.submitJob.plan.plan.chosen).toBe('canfar');
    // skaha: Pending, Running, Succeeded.
    const session = canfar.sessions.get(data!.submitJob.siteJobId!)!;
    await enter(data!.submitJob.id, session, 1, 'EXECUTING');
    const done = await enter(data!.submitJob.id, session, 2, 'COMPLETED');
    expect(done).toMatchObject({ state: 'COMPLETED', kind: 'CONTAINER', site: { id: 'canfar' }, results: null });
    expect(done.history.map((h) => h.to)).toContain('EXECUTING');
    expect([...canfar.sessions.values()].some((s) => s.image === 'images.canfar.net/skaha/terminal:1.1.2')).toBe(true);

    // The plan is typed: the job as the site's compute API received it, and every site's verdict with typed reasons.
    type Typed = { job: { plan: { candidates: { kind: string; siteId: string; siteJob: { image: string; args: string[]; env: { name: string; value: string }[]; cores: number; gpus: number } }[];
      plan: { registryVersion: number; chosen: string; candidates: { site: string; eligible: boolean; reasons: { code: string; message: string }[] }[] } } } };
    const PLAN = `query($id: ID!) { job(id: $id) { id plan { candidates { kind siteId ... on ContainerCandidate { siteJob { image args env { name value } cores gpus } } }
      plan { registryVersion chosen candidates { site eligible reasons { code message } } } } } }`;
    const typed = await broker.graphql<Typed>(PLAN, { id: done.id });
    expect(typed.errors).toBeUndefined();
    expect(typed.data!.job.plan.candidates[0]).toMatchObject({ kind: 'CONTAINER', siteId: 'canfar', siteJob: { args: ['-c', 'print(42)'], env: [{ name: 'MODE', value: 'test' }], cores: 1, gpus: 0 } });
    const verdicts = typed.data!.job.plan.plan.candidates;
    expect(verdicts.find((v) => v.site === 'canfar')!.eligible).toBe(true);
    expect(verdicts.filter((v) => !v.eligible).every((v) => v.reasons.length > 0)).toBe(true);

    // A plan damaged in the database is that field's INTERNAL error; the rest of the job still answers.
    const { rows: [kept] } = await broker.db.pool.query<{ plan: unknown }>('SELECT plan FROM jobs WHERE id = $1', [done.id]);
    await broker.db.pool.query(`UPDATE jobs SET plan = '{"candidates": [{"siteId": "canfar"}]}'::jsonb WHERE id = $1`, [done.id]);
    const damaged = await broker.graphql<{ job: { id: string; state: string; plan: null } }>('query($id: ID!) { job(id: $id) { id state plan { candidates { siteId } } } }', { id: done.id });
    expect(damaged.data!.job).toEqual({ id: done.id, state: 'COMPLETED', plan: null });
    expect(damaged.errors![0]).toMatchObject({ path: ['job', 'plan'], extensions: { code: 'CONSTELLATION_E_INTERNAL' } });
    expect(damaged.errors![0].message).toContain('candidate 0 (canfar) has no siteJob');
    // A record kept before sitesWithoutData reads as 0 of them; a count that is not one is damage.
    const stored = kept.plan as { plan: { sitesWithoutData?: unknown } };
    expect(stored.plan.sitesWithoutData).toBe(0);
    const withCount = async (count: unknown) => {
      const { sitesWithoutData: _dropped, ...rest } = stored.plan;
      await broker.db.pool.query('UPDATE jobs SET plan = $2::jsonb WHERE id = $1', [done.id, JSON.stringify({ ...stored, plan: { ...rest, ...(count === undefined ? {} : { sitesWithoutData: count }) } })]);
      return broker.graphql<{ job: { plan: { plan: { sitesWithoutData: number } } | null } }>('query($id: ID!) { job(id: $id) { plan { plan { sitesWithoutData } } } }', { id: done.id });
    };
    expect((await withCount(undefined)).data!.job.plan).toEqual({ plan: { sitesWithoutData: 0 } });
    const negative = await withCount(-1);
    expect(negative.data!.job.plan).toBeNull();
    expect(negative.errors![0].message).toContain('its planner record is malformed');
    await broker.db.pool.query('UPDATE jobs SET plan = $2::jsonb WHERE id = $1', [done.id, JSON.stringify(kept.plan)]);

    const missing = await broker.graphql(`mutation { submitJob(input: { image: "no/such:1", command: "true", cores: 1, memoryGb: 1 }) { id } }`);
    expect(missing.errors![0].extensions!.code).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
    const rules = new Set(missing.errors![0].extensions!.violations!.map((v) => v.rule));
    expect(rules.has('NO_IMAGE') || rules.has('NO_SERVICE')).toBe(true);
    const badEnv = await broker.graphql(`mutation { submitJob(input: { image: "x", command: "true", cores: 1, memoryGb: 1, env: [{ name: "1BAD", value: "" }] }) { id } }`);
    expect(badEnv.errors![0].extensions!.violations![0].path).toBe('input.env[0].name');
  }, WAITING_TEST_MS);

  // The embedded database belongs to one broker process, so only PostgreSQL has peers to hear from.
  it.skipIf(backend !== 'postgresql')('pushes changes made by another broker on the same PostgreSQL (LISTEN/NOTIFY)', async () => {
    // This broker never polls (its first tick runs before the job exists), so every change it
    // pushes must come from the first broker through the database.
    const peer = await startBroker(broker.app.services.config, broker.db, { prepared: true, http, jobs: { tickMs: 3_600_000 } });
    try {
      const { states } = await submitAndFollow({ adql: 'SELECT source_id FROM gaiadr3.gaia_source WHERE dec < 5', site: 'alpha' }, peer.url);
      expect(states.at(-1)).toBe('COMPLETED');
      expect(states.length).toBeGreaterThanOrEqual(2);
    } finally {
      await peer.close();
    }
  }, WAITING_TEST_MS);

  it('runs a container job as a SciServer JOBM docker job, its status flags mapped to the common states', async () => {
    const { data, errors } = await broker.graphql<{ submitJob: JobView }>(
      `mutation($i: ContainerJobInput!) { submitJob(input: $i) { ${JOB_FIELDS} } }`,
      { i: { image: 'image', command: 'python run.py', cores: 2, memoryGb: 8, site: 'sciserver', idempotencyKey: 'jobm-1' } },
    );
    expect(errors).toBeUndefined();
    // JOBM flags, a step each: PENDING, QUEUED, ACCEPTED, STARTED, FINISHED, SUCCESS.
    const jobm = sciserver.jobs.get(Number(data!.submitJob.siteJobId))!;
    await enter(data!.submitJob.id, jobm, 1, 'QUEUED');
    await enter(data!.submitJob.id, jobm, 3, 'EXECUTING');
    const done = await enter(data!.submitJob.id, jobm, 5, 'COMPLETED');
    expect(done).toMatchObject({ state: 'COMPLETED', site: { id: 'sciserver' } });
    expect(done.history.map((h) => h.to)).toEqual(expect.arrayContaining(['QUEUED', 'EXECUTING', 'COMPLETED']));
    // JOBM's own words for the phases are kept beside the common state.
    expect(done.sitePhase).toMatch(/SUCCESS|FINISHED/);
    // Too big for the pool's per-job limit: refused with the pool's numbers.
    const big = await broker.graphql(`mutation { submitJob(input: { image: "image", command: "x", cores: 64, memoryGb: 8, site: "sciserver" }) { id } }`);
    expect(big.errors![0].extensions!.code).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
    expect(big.errors![0].extensions!.violations!.map((v) => v.rule)).toContain('NO_CAPACITY');
  }, WAITING_TEST_MS);

  it('lists the caller\'s jobs newest first, filtered by state and kind', async () => {
    const { data } = await broker.graphql<{ all: { id: string; kind: string }[]; containers: { kind: string }[]; aborted: { state: string }[] }>(
      '{ all: jobs(limit: 100) { id kind } containers: jobs(filter: { kinds: [CONTAINER] }) { kind } aborted: jobs(filter: { states: [ABORTED] }) { state } }');
    expect(data!.all.length).toBeGreaterThanOrEqual(6);
    expect(data!.containers.length).toBeGreaterThanOrEqual(1);
    expect(data!.containers.every((j) => j.kind === 'CONTAINER')).toBe(true);
    expect(data!.aborted.length).toBeGreaterThanOrEqual(1);
    expect(data!.aborted.every((j) => j.state === 'ABORTED')).toBe(true);
  });
});
