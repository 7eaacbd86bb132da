/**
 * Issue 13, point 5: an async job (TAP UWS) whose creation the site answered, so it exists there
 * and its URL is known, whose next request then fails (the document read, the DELETE cleaning
 * up) must be followed or deleted at that site, never left running while another site runs it.
 *
 * One broker (on either database); two simulated TAP sites per case hold the case's dataset, the
 * first preferred. The preferred site forces faults on given requests about the job it creates
 * (by their order: the first is the broker's read of the job document right after creation); the
 * other answers honestly. Its ledger says what became of every site job made for the broker's
 * job: the one the broker recorded, one it had deleted, or one left running (an orphan). The
 * submit deadline is long enough (15 s) for the tries to start and delete a job to run out
 * before it on a busy machine, so each case takes the path it names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import type { ForcedFault, InjectedFault } from '../sites/fault-injector.js';
import type { TestBroker } from '../support/broker.js';
import { backend } from '../support/database.js';
import { jobSpec } from '../support/fleet-sites.js';
import { startFaultPairs, type FaultPairs, type PairSite } from '../support/fault-pairs.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

/** Faults on the requests about the preferred site's first async job: the `request`-th gets `fault`. */
function onRequests(...faults: [request: number, fault: InjectedFault][]): ForcedFault[] {
  return faults.map(([request, fault]) => ({ kind: 'job-request', nth: 1, request, fault }));
}

/** Requests `from` to `to` (inclusive) about the job, each with `fault`. */
function range(from: number, to: number, fault: InjectedFault): [number, InjectedFault][] {
  return Array.from({ length: to - from + 1 }, (_, i) => [from + i, fault]);
}

/** Each case: its dataset (an async job of jobSpec('orphan', n, 6) reads it) and the faults of its preferred site. */
const CASES = {
  // One document read garbled (not retried by the HTTP client): read again.
  'read-malformed': { n: 6, forced: onRequests([1, 'malformed']) },
  // Four resets in a row: the HTTP client's own retries (three) spent, then read again.
  'read-resets': { n: 7, forced: onRequests(...range(1, 4, 'reset')) },
  // The read hangs past the submit's deadline: found by its run id (its document garbled then too: the job list's phase stands in) and followed.
  'read-hang': { n: 8, forced: onRequests([1, 'hang'], [2, 'malformed']) },
  // Every read garbled: never started, so deleted there, the DELETE answered 503 beyond the HTTP client's retries and sent again.
  'never-started': { n: 9, forced: onRequests(...range(1, 4, 'malformed'), ...range(5, 8, '503')) },
  // Never started and the DELETE hangs: found by its run id and followed rather than left.
  'delete-hangs': { n: 10, forced: onRequests(...range(1, 4, 'malformed'), [5, 'hang']) },
} satisfies Record<string, { n: number; forced: ForcedFault[] }>;

type CaseName = keyof typeof CASES;

describe(`an async job a site made, whose next request failed, is followed or deleted there (${backend})`, () => {
  let broker: TestBroker;
  let sites: Map<string, PairSite>;
  let pairs: FaultPairs | undefined;

  beforeAll(async () => {
    pairs = await startFaultPairs('jobs-orphan', '{ pollIntervalS: 0.2, leaseS: 6, requestTimeoutS: 4, submitTimeoutS: 15 }', Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, { dataset: c.n % 6, forced: c.forced }])));
    ({ broker, sites } = pairs);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await pairs?.close();
  });

  /** Submit the case's async job, follow it to its end, and tell what became of every site job made for it. */
  async function run(name: CaseName): Promise<{ state: string; siteId: string | null; error: string | null; siteJobs: string[]; rows: number | string; expectedRows: number; history: string[] }> {
    const spec = jobSpec('orphan', CASES[name].n, 6);
    expect(spec.mode).toBe('async');
    const submitted = await broker.graphql<{ submitQuery: { id: string; plan: { candidates: { siteId: string }[] } } }>(
      'mutation($i: QueryInput!) { submitQuery(input: $i) { id plan { candidates { siteId } } } }', { i: { adql: spec.adql, idempotencyKey: name } });
    expect(submitted.errors, JSON.stringify(submitted.errors)).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    expect(submitted.data!.submitQuery.plan.candidates.map((c) => c.siteId)).toEqual([`${name}-a`, `${name}-b`]);
    const job = await waitUntil(
      async () => (await broker.graphql<{ job: { state: string; site: { id: string } | null; siteJobId: string | null; error: { message: string } | null } }>(
        'query($id: ID!) { job(id: $id) { state site { id } siteJobId error { message } } }', { id })).data!.job,
      (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state),
      { describe: (j) => `job ${id} still ${j.state}` },
    );
    const siteJobs = (['a', 'b'] as const).flatMap((role) => {
      const s = sites.get(`${name}-${role}`)!;
      return s.faults.attempts.filter((a) => a.runId === id && a.mode === 'async').map((a) => {
        const recorded = job.site?.id === `${name}-${role}` && a.siteJobId !== undefined && job.siteJobId?.endsWith(`/async/${a.siteJobId}`) === true;
        const deleted = s.faults.cancels.some((c) => c.siteJobId === a.siteJobId);
        return `${role}:${recorded ? 'recorded' : deleted ? 'deleted' : 'running unrecorded'}`;
      });
    });
    const history = (await broker.graphql<{ job: { history: { message: string | null }[] } }>('query($id: ID!) { job(id: $id) { history { message } } }', { id })).data!.job.history.map((e) => e.message ?? '');
    let rows: number | string = 'no result';
    if (job.state === 'COMPLETED') {
      const res = await fetch(`${broker.url}/results/${id}`);
      const doc = await readVOTableToArray(Buffer.from(await res.arrayBuffer())).then((d) => d, (err: Error) => err);
      rows = doc instanceof Error ? `unreadable (HTTP ${res.status}): ${doc.message}` : doc.tables[0].rows.length;
    }
    return { state: job.state, siteId: job.site?.id ?? null, error: job.error?.message ?? null, siteJobs, rows, expectedRows: spec.expectedRows, history };
  }

  /** The faults the preferred site of `name` applied to requests about jobs, by kind. */
  function applied(name: CaseName): Partial<Record<InjectedFault, number>> {
    return Object.fromEntries(Object.entries(sites.get(`${name}-a`)!.faults.injected.job).filter(([, n]) => n > 0));
  }

  it('reads the job document again after a garbled answer and follows the job where it was made', async () => {
    const job = await run('read-malformed');
    expect(applied('read-malformed')).toEqual({ malformed: 1 });
    expect(job, JSON.stringify(job.history)).toMatchObject({ state: 'COMPLETED', siteId: 'read-malformed-a', siteJobs: ['a:recorded'], rows: job.expectedRows });
  }, WAITING_TEST_MS);

  it('reads it again after resets that outlast the HTTP client\'s retries', async () => {
    const job = await run('read-resets');
    expect(applied('read-resets')).toEqual({ reset: 4 });
    expect(job, JSON.stringify(job.history)).toMatchObject({ state: 'COMPLETED', siteId: 'read-resets-a', siteJobs: ['a:recorded'], rows: job.expectedRows });
  }, WAITING_TEST_MS);

  it('finds the job by its run id and follows it when the read hangs past the submit deadline and the next is garbled', async () => {
    const job = await run('read-hang');
    expect(applied('read-hang')).toEqual({ hang: 1, malformed: 1 });
    expect(job, JSON.stringify(job.history)).toMatchObject({ state: 'COMPLETED', siteId: 'read-hang-a', siteJobs: ['a:recorded'], rows: job.expectedRows });
  }, WAITING_TEST_MS);

  it('deletes a job whose start can never be confirmed, sending the DELETE again after 503s, before asking the next site', async () => {
    const job = await run('never-started');
    expect(applied('never-started')).toEqual({ '503': 4, malformed: 4 });
    // On a machine busy enough that the four reads outlast the submit's deadline, the job is not
    // deleted but found by its run id (its document read answered 503 four times: the job list's
    // phase stands in) and followed: the other way of not leaving it. The history tells which.
    const deadlinePassed = job.history.some((m) => m.includes('found by its run id'));
    expect(job, JSON.stringify(job.history)).toMatchObject(deadlinePassed
      ? { state: 'COMPLETED', siteId: 'never-started-a', siteJobs: ['a:recorded'], rows: job.expectedRows }
      : { state: 'COMPLETED', siteId: 'never-started-b', siteJobs: ['a:deleted', 'b:recorded'], rows: job.expectedRows });
  }, WAITING_TEST_MS);

  it('follows a job it could neither start nor delete, found by its run id, instead of leaving it', async () => {
    const job = await run('delete-hangs');
    expect(applied('delete-hangs')).toEqual({ hang: 1, malformed: 4 });
    expect(job, JSON.stringify(job.history)).toMatchObject({ state: 'COMPLETED', siteId: 'delete-hangs-a', siteJobs: ['a:recorded'], rows: job.expectedRows });
  }, WAITING_TEST_MS);
});
