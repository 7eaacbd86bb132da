/** Queries on jobs and their history: create once, move through the state machine, claim for polling. */
import type { JobState } from '../../model/adapter.js';
import { readJobPlan, storedPlanJson, type JobKind, type JobPlan, type StoredJobPlan } from '../../model/job-plan.js';
import { ConstellationError } from '../../model/errors.js';
import type { Queryable } from '../db.js';

export type { JobKind };

/** The result formats a query's request may name (its `format`). */
export type RequestedFormat = 'votable' | 'csv' | 'json';

/** One job as stored, its jsonb read once: the plan typed by the job's kind, the request's format checked. */
export interface JobRow {
  id: string;
  owner: string;
  kind: JobKind;
  state: JobState;
  /** The request as the caller gave it (shown back as given, compared for idempotency). */
  request: unknown;
  /** The result format the request named (its `format`, lower case), or null. */
  requestedFormat: RequestedFormat | null;
  /** The plan the job runs under, or the coded error saying how the stored one is damaged. */
  plan: StoredJobPlan;
  candidateIndex: number;
  siteId: string | null;
  siteJobId: string | null;
  sitePhase: string | null;
  idempotencyKey: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
  submittedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  nextPollAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  pollFailures: number;
  unreachableSince: Date | null;
}

/** A row as the database returns it, before its jsonb is read. */
type StoredJobRow = Omit<JobRow, 'plan' | 'requestedFormat'> & { plan: unknown };

/** The row with its plan and request read once; a damaged plan is kept as its coded error, not thrown. */
function jobRow(stored: StoredJobRow): JobRow {
  return { ...stored, requestedFormat: formatOf(stored.request), plan: readJobPlan(stored.id, stored.kind, stored.plan) };
}

function formatOf(request: unknown): RequestedFormat | null {
  if (request === null || typeof request !== 'object' || !('format' in request) || typeof request.format !== 'string') return null;
  const format = request.format.toLowerCase();
  return format === 'votable' || format === 'csv' || format === 'json' ? format : null;
}

/** One entry of a job's history. */
export interface JobEventRow {
  id: number;
  jobId: string;
  at: Date;
  fromState: JobState | null;
  toState: JobState;
  siteId: string | null;
  errorCode: string | null;
  message: string | null;
}

const COLUMNS = `id, owner, kind, state, request, plan, candidate_index AS "candidateIndex", site_id AS "siteId",
  site_job_id AS "siteJobId", site_phase AS "sitePhase", idempotency_key AS "idempotencyKey",
  error_code AS "errorCode", error_message AS "errorMessage", created_at AS "createdAt", updated_at AS "updatedAt",
  submitted_at AS "submittedAt", started_at AS "startedAt", finished_at AS "finishedAt", next_poll_at AS "nextPollAt",
  lease_owner AS "leaseOwner", lease_until AS "leaseUntil", poll_failures AS "pollFailures",
  unreachable_since AS "unreachableSince"`;

const EVENT_COLUMNS = `id, job_id AS "jobId", at, from_state AS "fromState", to_state AS "toState", site_id AS "siteId",
  error_code AS "errorCode", message`;

const ACTIVE = `('PENDING', 'QUEUED', 'EXECUTING')`;

/**
 * Insert a job unless the owner already has one under the same idempotency key; returns the
 * stored job and whether this call created it (only the creator may submit it to a site).
 */
export async function createJobOnce(
  db: Queryable,
  job: { id: string; owner: string; kind: JobKind; request: unknown; plan: JobPlan; idempotencyKey?: string },
  lease: { owner: string; ms: number },
): Promise<{ job: JobRow; created: boolean }> {
  // The creator holds a lease while it submits, so no other broker takes the job as abandoned.
  const inserted = await db.query<StoredJobRow>(
    `WITH ins AS (
       INSERT INTO jobs (id, owner, kind, request, plan, idempotency_key, lease_owner, lease_until)
       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, now() + $8::int * interval '1 millisecond')
       ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING *),
     ev AS (INSERT INTO job_events (job_id, from_state, to_state, message) SELECT id, NULL, state, 'created' FROM ins)
     SELECT ${COLUMNS} FROM ins`,
    [job.id, job.owner, job.kind, JSON.stringify(job.request), JSON.stringify(storedPlanJson(job.plan)), job.idempotencyKey ?? null, lease.owner, lease.ms]);
  if (inserted.rows[0]) return { job: jobRow(inserted.rows[0]), created: true };
  // The conflicting row was committed by the other caller, so READ COMMITTED sees it now.
  const existing = job.idempotencyKey === undefined ? undefined : await jobByIdempotencyKey(db, job.owner, job.idempotencyKey);
  if (!existing) throw new ConstellationError('INTERNAL', `job ${job.id} was neither inserted nor found under its idempotency key`);
  return { job: existing, created: false };
}

/** The job with this id, or undefined. */
export async function jobById(db: Queryable, id: string): Promise<JobRow | undefined> {
  if (!UUID.test(id)) return undefined;
  return first(await db.query<StoredJobRow>(`SELECT ${COLUMNS} FROM jobs WHERE id = $1`, [id]));
}

/** Forget an unanswered submit the site turned out not to hold, so the job may be sent again; the history says why. */
export async function clearSubmission(db: Queryable, id: string, message: string): Promise<JobRow | undefined> {
  return first(await db.query<StoredJobRow>(
    `WITH u AS (UPDATE jobs SET submitted_at = NULL, updated_at = now()
                WHERE id = $1 AND state = 'PENDING' AND site_job_id IS NULL RETURNING *),
     ev AS (INSERT INTO job_events (job_id, from_state, to_state, site_id, message) SELECT id, state, state, site_id, $2 FROM u)
     SELECT ${COLUMNS} FROM u`,
    [id, message]));
}

/** The owner's job created under this idempotency key, or undefined. */
export async function jobByIdempotencyKey(db: Queryable, owner: string, key: string): Promise<JobRow | undefined> {
  return first(await db.query<StoredJobRow>(`SELECT ${COLUMNS} FROM jobs WHERE owner = $1 AND idempotency_key = $2`, [owner, key]));
}

/** The first row read, if any. */
function first(result: { rows: StoredJobRow[] }): JobRow | undefined {
  const row = result.rows[0];
  return row && jobRow(row);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An owner's jobs (every owner's when `owner` is null: admins), newest first, optionally filtered by state and kind. */
export async function jobsByOwner(
  db: Queryable,
  owner: string | null,
  filter: { states?: JobState[]; kinds?: JobKind[]; limit?: number; offset?: number } = {},
): Promise<JobRow[]> {
  return (await db.query<StoredJobRow>(
    `SELECT ${COLUMNS} FROM jobs
     WHERE ($1::text IS NULL OR owner = $1) AND ($2::text[] IS NULL OR state = ANY($2)) AND ($3::text[] IS NULL OR kind = ANY($3))
     ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5`,
    [owner, filter.states ?? null, filter.kinds ?? null, Math.min(filter.limit ?? 50, 500), filter.offset ?? 0])).rows.map(jobRow);
}

/** A job's history, oldest first. */
export async function jobEvents(db: Queryable, jobId: string): Promise<JobEventRow[]> {
  if (!UUID.test(jobId)) return [];
  return (await db.query<JobEventRow>(`SELECT ${EVENT_COLUMNS} FROM job_events WHERE job_id = $1 ORDER BY id`, [jobId])).rows;
}

/** Append an event that is not a state change (a failed submit, a site lost or found again). */
export async function recordJobEvent(
  db: Queryable,
  event: { jobId: string; state: JobState; siteId?: string | null; errorCode?: string | null; message: string },
): Promise<JobEventRow> {
  return (await db.query<JobEventRow>(
    `INSERT INTO job_events (job_id, from_state, to_state, site_id, error_code, message) VALUES ($1, $2, $2, $3, $4, $5)
     RETURNING ${EVENT_COLUMNS}`,
    [event.jobId, event.state, event.siteId ?? null, event.errorCode ?? null, event.message])).rows[0];
}

/**
 * Note that the job is about to be created at candidate `candidateIndex` (site `siteId`),
 * leased to `lease.owner` for as long as the submit may take. Returns undefined when the job
 * is no longer PENDING or already has a site job.
 */
export async function markSubmitting(
  db: Queryable,
  id: string,
  candidateIndex: number,
  siteId: string,
  lease: { owner: string; ms: number },
): Promise<JobRow | undefined> {
  return first(await db.query<StoredJobRow>(
    `UPDATE jobs SET submitted_at = now(), updated_at = now(), candidate_index = $2, site_id = $3,
       lease_owner = $4, lease_until = now() + $5::int * interval '1 millisecond'
     WHERE id = $1 AND state = 'PENDING' AND site_job_id IS NULL RETURNING ${COLUMNS}`,
    [id, candidateIndex, siteId, lease.owner, lease.ms]));
}

/**
 * Record that candidate `candidateIndex` refused the job (the site holds no job), in the row and
 * its history. Only the broker submitting it may: once another broker has taken the job over
 * (its submit lease ran out while this one was still busy), this one's failure is not recorded.
 */
export async function recordSubmitFailure(
  db: Queryable,
  id: string,
  failure: { candidateIndex: number; siteId: string; errorCode: string; message: string; broker: string },
): Promise<JobRow | undefined> {
  return first(await db.query<StoredJobRow>(
    `WITH u AS (
       UPDATE jobs SET submitted_at = NULL, site_id = NULL, candidate_index = $2 + 1, updated_at = now()
       WHERE id = $1 AND state = 'PENDING' AND site_job_id IS NULL AND candidate_index = $2
         AND (lease_owner IS NULL OR lease_owner = $6) RETURNING *),
     ev AS (INSERT INTO job_events (job_id, from_state, to_state, site_id, error_code, message)
            SELECT id, state, state, $3, $4, $5 FROM u)
     SELECT ${COLUMNS} FROM u`,
    [id, failure.candidateIndex, failure.siteId, failure.errorCode, failure.message, failure.broker]));
}

/** What a transition also records. */
export interface TransitionChange {
  /** The states the job may be in for the move to happen (the state machine's legal sources). */
  legalFrom: readonly JobState[];
  /** Only when this broker holds the job (or nobody does): a submitter whose lease another broker took must not place or fail it. */
  heldBy?: string;
  /** The candidate the job is placed with (so its result and kind are read from the right one). */
  candidateIndex?: number;
  siteId?: string;
  siteJobId?: string;
  sitePhase?: string;
  errorCode?: string;
  errorMessage?: string;
  /** The history line; defaults to the error message. */
  message?: string;
  /** When an unfinished job is next polled. */
  pollDelayMs?: number;
}

/**
 * Move a job to `to` and record the move in job_events, in one statement (one transaction,
 * nothing held open across awaits). The site answered, so any "unreachable" note is cleared
 * and a poll lease is released. Returns undefined when the job is not in a legal source state.
 */
export async function transition(db: Queryable, id: string, to: JobState, change: TransitionChange): Promise<{ job: JobRow; event: JobEventRow } | undefined> {
  const terminal = to === 'COMPLETED' || to === 'ERROR' || to === 'ABORTED';
  const res = await db.query<StoredJobRow & { event: JobEventRow }>(
    `WITH old AS (SELECT id, state FROM jobs WHERE id = $1 FOR UPDATE),
     u AS (
       UPDATE jobs j SET state = $2, updated_at = now(),
         site_id = COALESCE($4, j.site_id), site_job_id = COALESCE($5, j.site_job_id), site_phase = COALESCE($6, j.site_phase),
         error_code = $7, error_message = $8,
         started_at = CASE WHEN $2 IN ('EXECUTING', 'COMPLETED') THEN COALESCE(j.started_at, now()) ELSE j.started_at END,
         finished_at = CASE WHEN $9 THEN now() ELSE j.finished_at END,
         next_poll_at = CASE WHEN $9 THEN NULL WHEN $10::int IS NULL THEN j.next_poll_at ELSE now() + $10::int * interval '1 millisecond' END,
         lease_owner = NULL, lease_until = NULL, poll_failures = 0, unreachable_since = NULL,
         candidate_index = COALESCE($13::int, j.candidate_index)
       FROM old WHERE j.id = old.id AND old.state = ANY($3::text[]) AND old.state <> $2
         AND ($12::text IS NULL OR j.lease_owner IS NULL OR j.lease_owner = $12)
       RETURNING j.*, old.state AS from_state),
     ev AS (
       INSERT INTO job_events (job_id, from_state, to_state, site_id, error_code, message)
       SELECT id, from_state, state, site_id, $7, $11 FROM u RETURNING ${EVENT_COLUMNS})
     SELECT ${COLUMNS}, (SELECT row_to_json(ev) FROM ev) AS event FROM u`,
    [id, to, change.legalFrom, change.siteId ?? null, change.siteJobId ?? null, change.sitePhase ?? null,
      change.errorCode ?? null, change.errorMessage ?? null, terminal, change.pollDelayMs ?? null,
      change.message ?? change.errorMessage ?? null, change.heldBy ?? null, change.candidateIndex ?? null]);
  const row = res.rows[0];
  if (!row) return undefined;
  const { event, ...job } = row;
  return { job: jobRow(job), event: { ...event, at: new Date(event.at) } };
}

/**
 * Claim up to `limit` unfinished jobs due for a poll, leasing them to `owner` for `leaseMs`:
 * SKIP LOCKED and the lease keep two brokers from polling one job at once, and a broker that
 * dies mid-poll loses its claim when the lease runs out. PENDING jobs no site holds are
 * claimed too once their submitter's lease has run out (its broker stopped).
 */
export async function claimDueJobs(db: Queryable, owner: string, limit: number, leaseMs: number): Promise<JobRow[]> {
  return (await db.query<StoredJobRow>(
    `UPDATE jobs SET lease_owner = $1, lease_until = now() + $3::int * interval '1 millisecond'
     WHERE id IN (
       SELECT id FROM jobs
       WHERE state IN ${ACTIVE}
         AND ((site_job_id IS NOT NULL AND next_poll_at <= now()) OR (state = 'PENDING' AND site_job_id IS NULL))
         AND (lease_until IS NULL OR lease_until < now())
       ORDER BY next_poll_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     AND (lease_until IS NULL OR lease_until < now())
     RETURNING ${COLUMNS}`,
    [owner, limit, leaseMs])).rows.map(jobRow);
}

/**
 * The site answered and the state did not change: release the lease and schedule the next
 * poll. `recovered` is true when the job had been marked unreachable.
 */
export async function recordPollAnswer(
  db: Queryable,
  id: string,
  leaseOwner: string,
  answer: { sitePhase: string; pollDelayMs: number },
): Promise<{ job: JobRow; recovered: boolean } | undefined> {
  const row = (await db.query<StoredJobRow & { recovered: boolean }>(
    `WITH old AS (SELECT id, unreachable_since FROM jobs WHERE id = $1 FOR UPDATE),
     u AS (
       UPDATE jobs j SET site_phase = $3, next_poll_at = now() + $4::int * interval '1 millisecond', updated_at = now(),
         lease_owner = NULL, lease_until = NULL, poll_failures = 0, unreachable_since = NULL,
         error_code = CASE WHEN old.unreachable_since IS NULL THEN j.error_code END,
         error_message = CASE WHEN old.unreachable_since IS NULL THEN j.error_message END
       FROM old WHERE j.id = old.id AND j.lease_owner = $2 AND j.state IN ${ACTIVE}
       RETURNING j.*, old.unreachable_since IS NOT NULL AS recovered)
     SELECT ${COLUMNS}, recovered FROM u`,
    [id, leaseOwner, answer.sitePhase, answer.pollDelayMs])).rows[0];
  if (!row) return undefined;
  const { recovered, ...job } = row;
  return { job: jobRow(job), recovered };
}

/**
 * The site could not be reached while polling: the state stays, the job says since when the
 * site is unreachable and why, and the next poll backs off. `first` is true on the first miss.
 */
export async function recordPollUnreachable(
  db: Queryable,
  id: string,
  leaseOwner: string,
  failure: { errorCode: string; message: string; backoffBaseMs: number; backoffMaxMs: number },
): Promise<{ job: JobRow; first: boolean } | undefined> {
  const row = (await db.query<StoredJobRow & { first: boolean }>(
    `UPDATE jobs SET poll_failures = poll_failures + 1, unreachable_since = COALESCE(unreachable_since, now()),
       error_code = $3, error_message = $4, updated_at = now(), lease_owner = NULL, lease_until = NULL,
       next_poll_at = now() + LEAST($6::float8, $5::float8 * power(2, LEAST(poll_failures, 20))) * interval '1 millisecond'
     WHERE id = $1 AND lease_owner = $2 AND state IN ${ACTIVE}
     RETURNING ${COLUMNS}, poll_failures = 1 AS first`,
    [id, leaseOwner, failure.errorCode, failure.message, failure.backoffBaseMs, failure.backoffMaxMs])).rows[0];
  if (!row) return undefined;
  const { first: isFirst, ...job } = row;
  return { job: jobRow(job), first: isFirst };
}

/**
 * Keep `leaseOwner`'s submit lease alive while its submit is still running (a slow site, a busy
 * machine): without it another broker would take the job over and send it a second time.
 * False when the job is no longer being submitted under that lease.
 */
export async function renewSubmitLease(db: Queryable, id: string, leaseOwner: string, ms: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE jobs SET lease_until = now() + $3::int * interval '1 millisecond' WHERE id = $1 AND lease_owner = $2 AND state = 'PENDING' AND site_job_id IS NULL`,
    [id, leaseOwner, ms]);
  return (rowCount ?? 0) > 0;
}

/** Release a lease without recording anything (a poll that was itself interrupted). */
export async function releaseJobLease(db: Queryable, id: string, leaseOwner: string): Promise<void> {
  await db.query('UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [id, leaseOwner]);
}

/** Make every unfinished job due now (a broker starting resumes them without waiting out backoffs). */
export async function makeUnfinishedJobsDue(db: Queryable): Promise<number> {
  return (await db.query(
    `UPDATE jobs SET next_poll_at = now() WHERE state IN ${ACTIVE} AND site_job_id IS NOT NULL AND (next_poll_at IS NULL OR next_poll_at > now())`)).rowCount ?? 0;
}
