import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCanfarAdapter } from '../../adapters/canfar/adapter.js';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { createTapAdapter } from '../../adapters/tap/adapter.js';
import { jobResult } from '../../broker/jobs/results.js';
import { registerJobResultRoutes } from '../../broker/jobs/routes.js';
import type { JobCandidate } from '../../broker/jobs/plan.js';
import { JobService, type SiteBinding, type JobUpdate } from '../../broker/jobs/service.js';
import type { Adapter, SiteQuery } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { migrate } from '../../registry/store/migrate.js';
import { appendJobResultChunk, beginJobResult, completeJobResult, dropJobResult, jobResultHeader } from '../../registry/store/queries/job-results.js';
import { claimDueJobs, createJobOnce, jobById, jobEvents, markSubmitting, recordSubmitFailure, transition, type JobRow } from '../../registry/store/queries/jobs.js';
import { CanfarSite } from '../sites/canfar-site.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const GAIA: SimTable = {
  name: 'gaia.dr3lite',
  rows: 400,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg' },
    { name: 'dec', datatype: 'double', unit: 'deg' },
    { name: 'designation', datatype: 'char' },
  ],
};
const ADQL = 'SELECT source_id, ra, dec, designation FROM gaia.dr3lite WHERE ra < 15';
const expected = simRows(GAIA).filter((r) => (r[1] as number) < 15);

let db: TestDatabase;
let http: HttpClient;
let tap: Adapter;
let canfarAdapter: Adapter;
const tapSites = new Map<string, SimSite>();
const tapServices: TapService[] = [];
let canfar: CanfarSite;
const services: JobService[] = [];

async function tapSite(id: string, asyncDelayMs: number): Promise<SimSite> {
  const site = new SimSite();
  tapServices.push(mountTapService(site, { path: '/tap', tables: [GAIA], asyncDelayMs }));
  await site.start();
  tapSites.set(id, site);
  return site;
}

function resolve(siteId: string): SiteBinding {
  if (siteId === 'canfar') {
    return {
      adapter: canfarAdapter,
      context: {
        site: { id: 'canfar', name: 'CANFAR', platform: 'canfar', url: canfar.registryUrl, options: { resources: { skaha: 'ivo://cadc.nrc.ca/skaha', argus: 'ivo://cadc.nrc.ca/argus' } } },
        credential: { kind: 'bearer', token: canfar.token },
      },
    };
  }
  // "a2" is a second name for site "a" (two refusing candidates).
  const site = tapSites.get(siteId === 'a2' ? 'a' : siteId);
  if (!site) throw new ConstellationError('UNKNOWN_SITE', `no site ${siteId}`);
  return { adapter: tap, context: { site: { id: siteId, name: siteId, platform: 'tap', url: `${site.url}/tap` }, credential: { kind: 'anonymous' } } };
}

// Polls are fast so jobs move on quickly; a call to a site may take long (no test here needs one
// to time out: faults are 503s and refused connections), so a slow machine never turns a poll into
// "unreachable". The lease stays above the request timeout, as JobService asks.
function service(options: ConstructorParameters<typeof JobService>[2] = {}): JobService {
  const s = new JobService(db.pool, resolve, { pollIntervalMs: 50, tickMs: 25, leaseMs: 60_000, requestTimeoutMs: 30_000, backoffBaseMs: 50, backoffMaxMs: 200, ...options });
  services.push(s);
  return s;
}

function query(siteId: string): JobCandidate {
  const siteQuery: SiteQuery = { adql: ADQL, service: 'tap', mode: 'async' };
  return { kind: 'QUERY', siteId, siteQuery };
}

/** Poll the job's row until `pred`; the limit (PATIENCE_MS) only guards against a job that never moves on. */
function until(id: string, pred: (j: JobRow) => boolean): Promise<JobRow> {
  return waitUntil(async () => (await jobById(db.pool, id))!, pred, { describe: (job) => `job ${id} stuck in ${job.state} (${job.errorMessage ?? ''})` });
}

// Simulated skaha sessions stay in each phase for HOLD_MS, far longer than any test: a test moves a
// session into its next phase once the broker has recorded the current one, so the broker sees
// every phase however slowly the machine runs.
const HOLD_MS = 600_000;

/** Make the simulated `session` `phases` phase-lengths old (0 Pending, 1 Running, 2 ended), then wait until the job is `state` (or final). */
async function enter(id: string, session: { createdAt: number }, phases: number, state: JobRow['state']): Promise<JobRow> {
  session.createdAt = Date.now() - phases * HOLD_MS;
  const job = await until(id, (j) => j.state === state || ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state));
  expect(job.state).toBe(state);
  return job;
}

async function text(body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

/** Run one synchronous query at the site, so its query engine is up before the tests. */
async function warmUp(site: SimSite): Promise<void> {
  const res = await fetch(`${site.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: 'SELECT TOP 1 source_id FROM gaia.dr3lite' }) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

function asyncCreations(site: SimSite): number {
  return site.seen.filter((r) => r.method === 'POST' && /\/tap\/async\/?(\?|$)/.test(r.url)).length;
}

beforeAll(async () => {
  db = await freshDatabase();
  await migrate(db.pool);
  http = new HttpClient({ retries: 1, retryBaseMs: 10, connectTimeoutMs: 10_000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
  tap = createTapAdapter(http);
  canfarAdapter = createCanfarAdapter(http);
  await tapSite('a', 30);
  await tapSite('b', 200);
  await tapSite('slow', 2500);
  // Its jobs sit queued far longer than any test runs: one is still running whenever a test gets
  // to cancel it, however slow the machine.
  await tapSite('held', 600_000);
  // Each simulator boots its own query engine (an in-process PGlite) on its first query, which
  // takes long on a loaded machine: boot them here, not inside a test's submit or poll.
  for (const id of ['a', 'b', 'slow']) await warmUp(tapSites.get(id)!);
  // Sessions stay in each phase until a test moves them on (see HOLD_MS).
  canfar = await new CanfarSite({ pendingMs: HOLD_MS, runningMs: HOLD_MS }).start();
}, WAITING_TEST_MS);

// A test that fails midway must not leave its poller claiming the next test's jobs.
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
});

afterAll(async () => {
  // Closing the services clears the timers of jobs still queued at them.
  for (const t of tapServices) await t.close();
  for (const s of tapSites.values()) await s.close();
  await canfar?.close();
  await http?.close();
  await db?.close();
});

describe(`jobs (${backend})`, () => {
  it('runs a query end to end and streams its result as VOTable, CSV and JSON', async () => {
    const jobs = service();
    const updates: JobUpdate[] = [];
    jobs.onUpdate((u) => updates.push(u));
    await jobs.start();
    const submitted = await jobs.submit({ kind: 'QUERY', request: { adql: ADQL }, candidates: [query('b')] });
    // The site runs it 200 ms after it is created: on a loaded machine the submit can come back
    // after that, so the job may already be COMPLETED; either way it is placed as an async job.
    expect(['QUEUED', 'EXECUTING', 'COMPLETED']).toContain(submitted.state);
    expect(submitted.siteId).toBe('b');
    expect(submitted.siteJobId).toMatch(/\/tap\/async\/./);
    const done = await until(submitted.id, (j) => j.state === 'COMPLETED');
    expect(done.finishedAt).not.toBeNull();
    expect(done.startedAt).not.toBeNull();
    await jobs.stop();

    const history = await jobEvents(db.pool, done.id);
    expect(history[0]).toMatchObject({ fromState: null, toState: 'PENDING' });
    expect(history.at(-1)).toMatchObject({ toState: 'COMPLETED', siteId: 'b' });
    expect(updates.some((u) => u.job.id === done.id && u.event?.toState === 'COMPLETED')).toBe(true);

    const vot = await jobResult(jobs, done.id, 'votable');
    expect(vot.contentType).toMatch(/votable|xml/);
    const doc = await readVOTableToArray(vot.body);
    expect(doc.tables[0].rows).toHaveLength(expected.length);
    expect(doc.tables[0].rows.map((r) => r[0])).toEqual(expected.map((r) => r[0]));

    const csv = await text((await jobResult(jobs, done.id, 'csv')).body);
    const lines = csv.split('\r\n').filter((l) => l !== '');
    expect(lines[0]).toBe('source_id,ra,dec,designation');
    expect(lines).toHaveLength(expected.length + 1);
    expect(lines[1].split(',')[0]).toBe(String(expected[0][0]));
    expect(lines[1].split(',')[3]).toBe(expected[0][3]);

    const json = await jobResult(jobs, done.id, 'json');
    expect(json.contentType).toMatch(/application\/json/);
    const raw = await text(json.body);
    const parsed = JSON.parse(raw) as { metadata: { name: string; datatype: string }[]; data: unknown[][] };
    expect(parsed.metadata.map((m) => [m.name, m.datatype])).toEqual([['source_id', 'long'], ['ra', 'double'], ['dec', 'double'], ['designation', 'char']]);
    expect(parsed.data).toHaveLength(expected.length);
    // Long ids beyond 2^53 keep every digit in the JSON text.
    expect(raw).toContain(`[${String(expected[0][0])},`);
    expect(parsed.data[0][3]).toBe(expected[0][3]);

    // Through the HTTP route, on a real listener.
    const app = Fastify({ logger: false });
    registerJobResultRoutes(app, jobs);
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/results/${done.id}`, { headers: { accept: 'text/csv' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect((await res.text()).split('\r\n').filter((l) => l !== '')).toHaveLength(expected.length + 1);
      expect((await fetch(`${base}/results/${done.id}?format=parquet`)).status).toBe(400);
      expect((await fetch(`${base}/results/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
    } finally {
      await app.close();
    }
  }, WAITING_TEST_MS);

  it('runs a container job at the CANFAR simulator to COMPLETED', async () => {
    const jobs = service();
    await jobs.start();
    const job = await jobs.submit({
      kind: 'CONTAINER',
      request: { image: 'images.canfar.net/skaha/astroml:24.07' },
      candidates: [{
        siteId: 'canfar',
        siteJob: { image: 'images.canfar.net/skaha/astroml:24.07', command: 'python', args: ['run.py'], env: { MODE: 'test' }, cores: 1, memoryGb: 4, gpus: 0, name: 'jobtest' },
      }],
    });
    expect(job.state).toBe('QUEUED');
    expect(canfar.sessions.has(job.siteJobId!)).toBe(true);
    const session = canfar.sessions.get(job.siteJobId!)!;
    await enter(job.id, session, 1, 'EXECUTING');
    const done = await enter(job.id, session, 2, 'COMPLETED');
    expect(done.sitePhase).toBe('Succeeded');
    const states = (await jobEvents(db.pool, job.id)).map((e) => e.toState);
    expect(states).toEqual(['PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED']);
    await jobs.stop();
    await expect(jobResult(jobs, job.id, 'csv')).rejects.toMatchObject({ kind: 'NOT_FOUND' });
  }, WAITING_TEST_MS);

  it('a duplicate submit with the same idempotency key returns the same job and makes one site job', async () => {
    const jobs = service();
    const site = tapSites.get('b')!;
    const before = asyncCreations(site);
    const input = { kind: 'QUERY' as const, idempotencyKey: 'retry-me-1', request: { adql: ADQL }, candidates: [query('b')] };
    const [first, second] = await Promise.all([jobs.submit(input), jobs.submit(input)]);
    const third = await jobs.submit(input);
    expect(second.id).toBe(first.id);
    expect(third.id).toBe(first.id);
    expect(third.siteJobId).toBeTruthy();
    expect(asyncCreations(site) - before).toBe(1);
    // Another owner's key is another job.
    const other = await jobs.submit({ ...input, owner: 'someone-else' });
    expect(other.id).not.toBe(first.id);
  }, WAITING_TEST_MS);

  it('fails over when the first site answers 503, recording the failure', async () => {
    const jobs = service();
    const a = tapSites.get('a')!;
    await a.setFault({ kind: 'status', status: 503 });
    try {
      const job = await jobs.submit({ kind: 'QUERY', request: { adql: ADQL }, candidates: [query('a'), query('b')] });
      expect(job.siteId).toBe('b');
      expect(job.candidateIndex).toBe(1);
      // One refused POST, not retried, and the site holds no job.
      expect(asyncCreations(a)).toBe(1);
      await a.setFault({ kind: 'none' });
      expect(await (await fetch(`${a.url}/tap/async`)).text()).not.toContain('jobref');
      await a.setFault({ kind: 'status', status: 503 });
      const failures = (await jobEvents(db.pool, job.id)).filter((e) => e.errorCode);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ siteId: 'a', fromState: 'PENDING', toState: 'PENDING', errorCode: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE' });
      expect(failures[0].message).toMatch(/503/);

      // Every candidate refusing: ERROR naming each one.
      const failed = await jobs.submit({ kind: 'QUERY', request: { adql: ADQL }, candidates: [query('a'), query('a2')] });
      expect(failed.state).toBe('ERROR');
      expect(failed.errorMessage).toMatch(/no candidate site accepted the job: a: .*503.*; a2: .*503/);
    } finally {
      await a.setFault({ kind: 'none' });
    }
  }, WAITING_TEST_MS);

  it('keeps a job whose site is unreachable while polling, says so, and recovers', async () => {
    const jobs = service();
    const slow = tapSites.get('slow')!;
    const job = await jobs.submit({ kind: 'QUERY', request: { adql: ADQL }, candidates: [query('slow')] });
    expect(job.state).toBe('QUEUED');
    await slow.setFault({ kind: 'refuse' });
    let noted: JobRow;
    try {
      await sleep(60);
      await jobs.pollOnce();
      noted = (await jobById(db.pool, job.id))!;
      expect(noted.state).toBe('QUEUED');
      expect(noted.unreachableSince).not.toBeNull();
      expect(noted.errorCode).toBe('CONSTELLATION_E_UPSTREAM_UNAVAILABLE');
      expect(noted.errorMessage).toMatch(/slow has been unreachable since .*kept as QUEUED/);
      expect(noted.pollFailures).toBe(1);
      await sleep(120);
      await jobs.pollOnce();
      expect((await jobById(db.pool, job.id))!.pollFailures).toBe(2);
    } finally {
      await slow.setFault({ kind: 'none' });
    }
    await jobs.start();
    const done = await until(job.id, (j) => j.state === 'COMPLETED');
    expect(done.unreachableSince).toBeNull();
    expect(done.errorMessage).toBeNull();
    const messages = (await jobEvents(db.pool, job.id)).map((e) => e.message ?? '');
    expect(messages.filter((m) => m.startsWith('slow unreachable'))).toHaveLength(1);
    await jobs.stop();
  }, WAITING_TEST_MS);

  it('propagates cancel to the site (TAP abort and skaha delete)', async () => {
    const jobs = service();
    const held = tapSites.get('held')!;
    const job = await jobs.submit({ kind: 'QUERY', request: { adql: ADQL }, candidates: [query('held')] });
    const cancelled = await jobs.cancel(job.id);
    expect(cancelled.state).toBe('ABORTED');
    const jobPath = new URL(job.siteJobId!).pathname;
    expect(held.seen.some((r) => r.method === 'POST' && r.url === `${jobPath}/phase`)).toBe(true);
    expect((await tap.jobStatus!(resolve('held').context, job.siteJobId!)).state).toBe('ABORTED');
    // Cancelling again is a no-op; a finished job stays finished.
    expect((await jobs.cancel(job.id)).state).toBe('ABORTED');
    await expect(jobs.cancel('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({ kind: 'NOT_FOUND' });

    const container = await jobs.submit({
      kind: 'CONTAINER',
      request: {},
      candidates: [{ siteId: 'canfar', siteJob: { image: 'images.canfar.net/skaha/astroml:24.07', command: 'sleep', args: ['60'], env: {}, cores: 1, memoryGb: 4, gpus: 0, name: 'cancelme' } }],
    });
    expect(canfar.sessions.has(container.siteJobId!)).toBe(true);
    expect((await jobs.cancel(container.id)).state).toBe('ABORTED');
    expect(canfar.sessions.has(container.siteJobId!)).toBe(false);
  }, WAITING_TEST_MS);

  it.skipIf(!process.env.DATABASE_URL)('notifies constellation_jobs listeners of every recorded event', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const seen: { jobId: string; from: string | null; to: string }[] = [];
    listener.on('notification', (n) => seen.push(JSON.parse(n.payload!)));
    await listener.query('LISTEN constellation_jobs');
    try {
      const jobs = service();
      const job = await jobs.submit({ kind: 'QUERY', request: {}, candidates: [query('held')] });
      await jobs.cancel(job.id);
      // Wait for the third notification; if it never comes, the comparison below shows what did.
      await waitUntil(() => seen.filter((n) => n.jobId === job.id).length, (n) => n >= 3).catch(() => undefined);
      expect(seen.filter((n) => n.jobId === job.id).map((n) => [n.from, n.to])).toEqual([[null, 'PENDING'], ['PENDING', 'QUEUED'], ['QUEUED', 'ABORTED']]);
    } finally {
      await listener.end();
    }
  }, WAITING_TEST_MS);

  it('sends a synchronous query again when a broker died before recording the site\'s answer', async () => {
    // What a broker killed between asking site "a" and recording its answer leaves behind.
    const { job } = await createJobOnce(db.pool, {
      id: randomUUID(), owner: 'anonymous', kind: 'QUERY', request: { adql: ADQL },
      plan: { candidates: [{ kind: 'QUERY', siteId: 'a', siteQuery: { adql: ADQL, service: 'tap', mode: 'sync' } }], record: null },
    }, { owner: 'dead-broker', ms: 1 });
    expect(await markSubmitting(db.pool, job.id, 0, 'a', { owner: 'dead-broker', ms: 1 })).toBeDefined();
    await sleep(10);
    const jobs = service();
    await jobs.start();
    const done = await until(job.id, (j) => j.state !== 'PENDING');
    expect(done.state).toBe('COMPLETED');
    expect((await jobEvents(db.pool, job.id)).map((e) => e.message).join('\n')).toMatch(/broker stopped while submitting to a .* holds no job with its run id, so it is sent again/);
    const rows = (await readVOTableToArray((await jobResult(jobs, job.id, 'votable')).body)).tables[0].rows;
    expect(rows).toHaveLength(expected.length);
  }, WAITING_TEST_MS);

  it('a submitter whose lease another broker took over records no failure and leaves its answer alone; a placement keeps its own candidate', async () => {
    // Seen under load: broker A, still reading a synchronous answer after its submit lease ran
    // out, failed candidate 0 while broker B had taken the job and was placing it there, which
    // left the job COMPLETED pointing at the wrong candidate (its kept result then unreadable).
    const sync = { adql: ADQL, service: 'tap', mode: 'sync' as const };
    const { job } = await createJobOnce(db.pool, {
      id: randomUUID(), owner: 'anonymous', kind: 'QUERY', request: { adql: ADQL, lease: 'taken' },
      plan: { candidates: [{ kind: 'QUERY', siteId: 'a', siteQuery: sync }, { kind: 'QUERY', siteId: 'b', siteQuery: sync }], record: null },
    }, { owner: 'broker-a', ms: 1 });
    expect(await markSubmitting(db.pool, job.id, 0, 'a', { owner: 'broker-a', ms: 1 })).toBeDefined();
    await sleep(10);
    expect((await claimDueJobs(db.pool, 'broker-b', 1000, 1)).map((j) => j.id)).toContain(job.id);
    const failure = { candidateIndex: 0, siteId: 'a', errorCode: 'CONSTELLATION_E_UPSTREAM', message: 'a: too slow' };
    expect(await recordSubmitFailure(db.pool, job.id, { ...failure, broker: 'broker-a' })).toBeUndefined();
    expect((await jobById(db.pool, job.id))!.candidateIndex).toBe(0);
    // Nor may A touch the answer B is keeping: it can neither begin over it nor drop it (seen as a
    // job_result_chunks foreign-key error in B's write, which then failed the job).
    expect(await beginJobResult(db.pool, job.id, 'broker-b', 'application/x-votable+xml', 60_000)).toBe(true);
    expect(await beginJobResult(db.pool, job.id, 'broker-a', 'application/x-votable+xml', 60_000)).toBe(false);
    await dropJobResult(db.pool, job.id, 'broker-a');
    // A's chunks do not land in B's answer, nor may A mark it complete.
    expect(await appendJobResultChunk(db.pool, job.id, 'broker-a', 0, new Uint8Array([9]))).toBe(false);
    expect(await appendJobResultChunk(db.pool, job.id, 'broker-b', 0, new Uint8Array([1, 2, 3]))).toBe(true);
    expect(await completeJobResult(db.pool, job.id, 'broker-a', 3, 1)).toBe(false);
    expect(await jobResultHeader(db.pool, job.id)).toMatchObject({ complete: false });
    expect(await completeJobResult(db.pool, job.id, 'broker-b', 3, 1)).toBe(true);
    // The broker holding it may; a failure for a candidate the job has moved past is not recorded twice.
    expect((await recordSubmitFailure(db.pool, job.id, { ...failure, broker: 'broker-b' }))!.candidateIndex).toBe(1);
    expect(await recordSubmitFailure(db.pool, job.id, { ...failure, broker: 'broker-b' })).toBeUndefined();
    // Placed with candidate 0 after all: the row says so, whatever was recorded meanwhile.
    const placed = await transition(db.pool, job.id, 'COMPLETED', { legalFrom: ['PENDING'], siteId: 'a', siteJobId: 'sync:placed', sitePhase: 'COMPLETED', candidateIndex: 0 });
    expect(placed!.job).toMatchObject({ state: 'COMPLETED', candidateIndex: 0, siteId: 'a' });
    // Once placed, the kept answer is nobody's to rewrite: not even the last holder's second submit
    // (seen under load: the same broker re-sent a job whose lease looked lapsed, and its second
    // write deleted the COMPLETED job's answer, which a thread then read as RESULT_EXPIRED).
    expect(await beginJobResult(db.pool, job.id, 'broker-b', 'application/x-votable+xml', 60_000)).toBe(false);
    await dropJobResult(db.pool, job.id, 'broker-b');
    expect(await jobResultHeader(db.pool, job.id)).toMatchObject({ complete: true, bytes: 3, chunks: 1 });
  }, WAITING_TEST_MS);

  /** A site that holds the answer to queries carrying `marker` until released, counting them. */
  async function holdingSite(id: string, marker: string) {
    const site = new SimSite();
    tapServices.push(mountTapService(site, { path: '/tap', tables: [GAIA] }));
    const held = { sent: 0, release: () => {}, arrival: Promise.resolve() };
    const released = new Promise<void>((r) => (held.release = r));
    let arrived = () => {};
    held.arrival = new Promise<void>((r) => (arrived = r));
    site.app.addHook('preHandler', async (request) => {
      if (request.url.startsWith('/tap/sync') && JSON.stringify(request.body ?? '').includes(marker)) {
        held.sent++;
        arrived();
        await released;
      }
    });
    await site.start();
    tapSites.set(id, site);
    const adql = `SELECT source_id, ra, dec, designation FROM gaia.dr3lite WHERE ra < 15 AND designation <> '${marker}'`;
    const candidates: JobCandidate[] = [{ kind: 'QUERY', siteId: id, siteQuery: { adql, service: 'tap', mode: 'sync' } }];
    return { held, request: { adql, probe: marker }, candidates, jobId: async () => (await db.pool.query<{ id: string }>(`SELECT id FROM jobs WHERE request->>'probe' = $1`, [marker])).rows[0].id };
  }

  it('a synchronous answer slower than its submit lease is sent once and kept whole: the lease is renewed, and a claim of a job still being submitted here starts no second submit', async () => {
    const { held, request, candidates, jobId } = await holdingSite('slow', 'lease_renewal_probe');
    const jobs = service({ submitTimeoutMs: 60_000 });
    await jobs.start();
    const submitted = jobs.submit({ kind: 'QUERY', request, candidates });
    await held.arrival;
    const id = await jobId();
    // What a stalled machine looks like to the database: the submit lease has run out.
    await db.pool.query(`UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1`, [id]);
    // The poll loop claims it (the lease looked lapsed) and must not send it again.
    await waitUntil(async () => (await jobById(db.pool, id))!, (j) => j.leaseUntil !== null && j.leaseUntil.getTime() > Date.now());
    held.release();
    const job = await submitted;
    expect(job.state).toBe('COMPLETED');
    expect(held.sent).toBe(1);
    const rows = (await readVOTableToArray((await jobResult(jobs, job.id, 'votable')).body)).tables[0].rows;
    expect(rows).toHaveLength(expected.length);
  }, WAITING_TEST_MS);

  it('a broker stopping mid-submit releases the job at once: another broker resumes it without waiting for the lease', async () => {
    const { held, request, candidates, jobId } = await holdingSite('stopping', 'stop_release_probe');
    // A submit lease far longer than the test: only the release lets the second broker in.
    const first = service({ submitTimeoutMs: 600_000, brokerId: 'first' });
    const submitted = first.submit({ kind: 'QUERY', request, candidates });
    await held.arrival;
    const id = await jobId();
    await first.stop();
    await submitted;
    expect(await jobById(db.pool, id)).toMatchObject({ state: 'PENDING', leaseOwner: null });
    held.release();
    const second = service({ submitTimeoutMs: 600_000, brokerId: 'second' });
    await second.start();
    const done = await until(id, (j) => j.state !== 'PENDING');
    expect(done.state).toBe('COMPLETED');
    expect(held.sent).toBe(2);
    const rows = (await readVOTableToArray((await jobResult(second, id, 'votable')).body)).tables[0].rows;
    expect(rows).toHaveLength(expected.length);
  }, WAITING_TEST_MS);

  it('finds an async job a dead broker created at the site by its run id, or sends it once when the site has none', async () => {
    const site = tapSites.get('b')!;
    const lost = async (runAtSite: boolean) => {
      const id = randomUUID();
      const siteQuery = { adql: ADQL, service: 'tap', mode: 'async' as const };
      await createJobOnce(db.pool, { id, owner: 'anonymous', kind: 'QUERY', request: { adql: ADQL, id }, plan: { candidates: [{ kind: 'QUERY', siteId: 'b', siteQuery }], record: null } }, { owner: 'dead-broker', ms: 1 });
      await markSubmitting(db.pool, id, 0, 'b', { owner: 'dead-broker', ms: 1 });
      // The dead broker's POST reached the site (or never did).
      if (runAtSite) {
        const res = await fetch(`${site.url}/tap/async`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: ADQL, RUNID: id, PHASE: 'RUN' }), redirect: 'manual' });
        expect(res.status).toBe(303);
      }
      return id;
    };
    const adopted = await lost(true);
    const resent = await lost(false);
    const before = asyncCreations(site);
    await sleep(10);
    const jobs = service();
    await jobs.start();
    const a = await until(adopted, (j) => j.state === 'COMPLETED' || j.state === 'ERROR');
    const b = await until(resent, (j) => j.state === 'COMPLETED' || j.state === 'ERROR');
    expect([a.state, b.state]).toEqual(['COMPLETED', 'COMPLETED']);
    // One site job each: the adopted one was not created again, the other was created once.
    expect(asyncCreations(site) - before).toBe(1);
    const messages = async (id: string) => (await jobEvents(db.pool, id)).map((e) => e.message).join('\n');
    expect(await messages(adopted)).toMatch(/found it there as .* by its run id/);
    expect(await messages(resent)).toMatch(/holds no job with its run id, so it is sent again/);
    expect(site.seen.some((r) => r.method === 'GET' && /\/tap\/async\?AFTER=/.test(r.url))).toBe(true);
  }, WAITING_TEST_MS);

  it('fails a job whose stored plan comes back damaged with INTERNAL saying so, instead of failing every poll', async () => {
    // A dead broker's job whose plan column no longer holds a plan (edited by hand, or a bug).
    const { job } = await createJobOnce(db.pool, {
      id: randomUUID(), owner: 'anonymous', kind: 'QUERY', request: { adql: ADQL },
      plan: { candidates: [query('a')], record: null },
    }, { owner: 'dead-broker', ms: 1 });
    await db.pool.query('UPDATE jobs SET plan = $2::jsonb WHERE id = $1', [job.id, JSON.stringify({ candidates: [{ siteId: 'a', siteJob: { image: 'x' } }] })]);
    await sleep(10);
    const errors: unknown[] = [];
    const jobs = service({ onError: (err) => errors.push(err) });
    await jobs.start();
    const done = await until(job.id, (j) => j.state !== 'PENDING');
    expect(done.state).toBe('ERROR');
    expect(done.errorCode).toBe('CONSTELLATION_E_INTERNAL');
    expect(done.errorMessage).toBe(`the stored plan of job ${job.id} is not a plan (candidate 0 (a) has no siteQuery)`);
    expect(errors).toHaveLength(1);
  }, WAITING_TEST_MS);

  it('rejects a bad submit clearly', async () => {
    const jobs = service();
    const err = await jobs.submit({ kind: 'QUERY', request: {}, candidates: [{ siteId: 'b' }] }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('INVALID_ARGUMENT');
    await expect(jobs.submit({ kind: 'QUERY', request: {}, candidates: [] })).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT' });
  });
});
