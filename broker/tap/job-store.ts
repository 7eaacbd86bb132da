/**
 * The TAP facade's UWS jobs in the database (table tap_jobs): parameters until RUN, then the
 * broker job (or cross-match thread) they became, or the kept result of a query of local tables.
 * Every change of phase is one conditional UPDATE, so that RUN, ABORT, a parameter change and the
 * clean-up racing each other (on one broker or several) each find the row as the others left it.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ConstellationError } from '../../registry/model/errors.js';
import { withTransaction, type Queryable } from '../../registry/store/db.js';
import type { CrossSiteJoin } from './crossmatch-join.js';
import { parseTapJobRow, type TapJobRow } from './job-row.js';
import { MAX_LIVE_JOBS_PER_OWNER, MAX_STORED_BYTES_PER_OWNER } from './limits.js';
import { isReportedPhase, PHASE_SQL, type UwsPhase } from './uws.js';

export type { TapJobRow } from './job-row.js';

const COLUMNS = `t.id, t.owner, t.params, t.upload_name AS "uploadName", t.upload_votable AS "uploadVotable", t.phase, t.job_id AS "jobId",
  t.thread_id AS "threadId", t.thread_join AS "threadJoin", t.error_message AS "errorMessage", t.execution_duration AS "executionDuration",
  t.destruction, t.created_at AS "createdAt", t.started_at AS "startedAt", t.result IS NOT NULL AS "hasResult"`;

/** The same without the upload's text (the job list needs none). */
const LIST_COLUMNS = COLUMNS.replace('t.upload_votable AS "uploadVotable"', 'NULL AS "uploadVotable"');

/** Whether a job neither runs nor ran as a broker job or thread (its own phase rules). */
const UNLINKED = 'job_id IS NULL AND thread_join IS NULL';

/** An uploaded table a job keeps (its VOTable text, under the part name its UPLOAD parameter reads). */
export interface KeptUpload {
  name: string;
  votable: string;
}

/** What `owner`'s live jobs hold: how many, and the bytes of their uploads and kept results. */
async function usageOf(db: Queryable, owner: string, except?: string): Promise<{ jobs: number; bytes: number }> {
  const { rows } = await db.query<{ jobs: number; bytes: number }>(
    `SELECT count(*)::int AS jobs, (COALESCE(sum(octet_length(upload_votable)), 0) + COALESCE(sum(octet_length(result)), 0))::float8 AS bytes
     FROM tap_jobs WHERE owner = $1 AND destruction > now() AND id IS DISTINCT FROM $2::uuid`,
    [owner, except ?? null],
  );
  return { jobs: Number(rows[0]?.jobs ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
}

/** Refuse `adding` bytes (or, with `newJob`, one more job) that would take `owner` over a cap. */
function checkRoom(usage: { jobs: number; bytes: number }, adding: number, newJob: boolean): void {
  if (newJob && usage.jobs >= MAX_LIVE_JOBS_PER_OWNER) {
    throw new ConstellationError('QUOTA_EXCEEDED', `you hold ${usage.jobs} async TAP jobs, the most one caller may keep (${MAX_LIVE_JOBS_PER_OWNER}); DELETE finished ones (or let them reach their DESTRUCTION) and create this one again`);
  }
  if (usage.bytes + adding > MAX_STORED_BYTES_PER_OWNER) {
    throw new ConstellationError('QUOTA_EXCEEDED', `your async TAP jobs keep ${usage.bytes} bytes of uploads and results; with this upload of ${adding} bytes they would pass the ${MAX_STORED_BYTES_PER_OWNER} bytes one caller may keep; DELETE jobs you no longer need`);
  }
}

/** Run `fn` holding `owner`'s lock (transaction-scoped), so that two requests of one owner cannot both pass the caps. */
function underOwnerLock<T>(pool: pg.Pool, owner: string, fn: (client: Queryable) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tap_jobs/' || $1))`, [owner]);
    return fn(client);
  });
}

/** Create a PENDING job, or QUOTA_EXCEEDED when the owner's live jobs are at their caps. */
export async function createTapJob(pool: pg.Pool, job: { owner: string; params: Record<string, string>; upload?: KeptUpload; executionDuration: number; destruction: Date }): Promise<TapJobRow> {
  return underOwnerLock(pool, job.owner, async (db) => {
    checkRoom(await usageOf(db, job.owner), job.upload ? Buffer.byteLength(job.upload.votable) : 0, true);
    const { rows } = await db.query<Record<string, unknown>>(
      `INSERT INTO tap_jobs AS t (id, owner, params, upload_name, upload_votable, execution_duration, destruction) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [randomUUID(), job.owner, JSON.stringify(job.params), job.upload?.name ?? null, job.upload?.votable ?? null, job.executionDuration, job.destruction],
    );
    return parseTapJobRow(rows[0]);
  });
}

/** The job `id` of `owner`, unless destroyed (or absent, or another owner's). */
export async function tapJobById(db: Queryable, id: string, owner: string): Promise<TapJobRow | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const { rows } = await db.query<Record<string, unknown>>(`SELECT ${COLUMNS} FROM tap_jobs t WHERE t.id = $1 AND t.owner = $2 AND t.destruction > now()`, [id, owner]);
  return rows[0] ? parseTapJobRow(rows[0]) : undefined;
}

/** The owner's jobs with their UWS phases, newest first: those created after `after`, in `phases` (all when empty), the `last` most recent. */
export async function tapJobsOf(db: Queryable, owner: string, filter: { after?: Date; last: number; phases: readonly UwsPhase[] }): Promise<{ tap: TapJobRow; phase: UwsPhase }[]> {
  const params: unknown[] = [owner];
  let where = 't.owner = $1 AND t.destruction > now()';
  if (filter.after) {
    params.push(filter.after);
    where += ` AND t.created_at > $${params.length}`;
  }
  if (filter.phases.length > 0) {
    params.push([...filter.phases]);
    // Filtered before the LIMIT: LAST=1&PHASE=COMPLETED is the newest completed job.
    where += ` AND (${PHASE_SQL}) = ANY($${params.length}::text[])`;
  }
  params.push(filter.last);
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${LIST_COLUMNS}, (${PHASE_SQL}) AS "uwsPhase" FROM tap_jobs t LEFT JOIN jobs j ON j.id = t.job_id LEFT JOIN threads th ON th.id = t.thread_id
     WHERE ${where} ORDER BY t.created_at DESC, t.id LIMIT $${params.length}`,
    params,
  );
  return rows.map((row) => {
    const tap = parseTapJobRow(row);
    const phase = row.uwsPhase;
    if (typeof phase !== 'string' || !isReportedPhase(phase)) throw new ConstellationError('INTERNAL', `TAP job ${tap.id}: its phase reads as "${String(row.uwsPhase).slice(0, 20)}"`);
    return { tap, phase };
  });
}

/** Change a job's parameters while it is PENDING and not claimed by RUN; false when it no longer is. A new upload counts against the owner's bytes. */
export async function updatePendingTapJob(pool: pg.Pool, tap: Pick<TapJobRow, 'id' | 'owner'>, change: { params?: Record<string, string>; upload?: KeptUpload }): Promise<boolean> {
  return underOwnerLock(pool, tap.owner, async (db) => {
    if (change.upload) checkRoom(await usageOf(db, tap.owner, tap.id), Buffer.byteLength(change.upload.votable), false);
    const { rowCount } = await db.query(
      `UPDATE tap_jobs SET params = COALESCE($2, params), upload_name = COALESCE($3, upload_name), upload_votable = COALESCE($4, upload_votable)
       WHERE id = $1 AND phase = 'PENDING' AND started_at IS NULL AND ${UNLINKED}`,
      [tap.id, change.params ? JSON.stringify(change.params) : null, change.upload?.name ?? null, change.upload?.votable ?? null],
    );
    return (rowCount ?? 0) > 0;
  });
}

/** Set the destruction time or execution duration (any phase; the caller clamps them, limits.ts). */
export async function setTapJobTimes(db: Queryable, id: string, change: { destruction?: Date; executionDuration?: number }): Promise<void> {
  await db.query('UPDATE tap_jobs SET destruction = COALESCE($2, destruction), execution_duration = COALESCE($3, execution_duration) WHERE id = $1', [id, change.destruction ?? null, change.executionDuration ?? null]);
}

/**
 * Claim a PENDING job for running (once: a second RUN finds it claimed): the row as claimed, whose
 * parameters are the ones run (they cannot change after), or undefined when it is not PENDING.
 * Until it is linked (below) the job reports QUEUED.
 */
export async function claimTapJobRun(db: Queryable, id: string): Promise<TapJobRow | undefined> {
  const { rows } = await db.query<Record<string, unknown>>(
    `UPDATE tap_jobs t SET started_at = now() WHERE t.id = $1 AND t.phase = 'PENDING' AND t.started_at IS NULL AND t.job_id IS NULL AND t.thread_join IS NULL RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0] ? parseTapJobRow(rows[0]) : undefined;
}

/** Record the broker job a claimed run became; false when the job was aborted (or destroyed) meanwhile: the caller cancels the broker job. */
export async function linkTapJob(db: Queryable, id: string, jobId: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE tap_jobs SET job_id = $2, upload_votable = NULL WHERE id = $1 AND phase = 'PENDING' AND started_at IS NOT NULL AND ${UNLINKED}`, [id, jobId]);
  return (rowCount ?? 0) > 0;
}

/** Record the cross-match thread a claimed run became, with how its rows map to the query's; false when aborted meanwhile (the caller cancels the thread). */
export async function linkTapThread(db: Queryable, id: string, threadId: string, join: CrossSiteJoin): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE tap_jobs SET thread_id = $2, thread_join = $3, upload_votable = NULL WHERE id = $1 AND phase = 'PENDING' AND started_at IS NOT NULL AND ${UNLINKED}`,
    [id, threadId, JSON.stringify(join)],
  );
  return (rowCount ?? 0) > 0;
}

/** A claimed run of local tables begins: EXECUTING; false when aborted meanwhile. */
export async function beginLocalRun(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE tap_jobs SET phase = 'EXECUTING' WHERE id = $1 AND phase = 'PENDING' AND started_at IS NOT NULL AND ${UNLINKED}`, [id]);
  return (rowCount ?? 0) > 0;
}

/**
 * Keep the result of a local run: COMPLETED. False when it was aborted meanwhile (the result is
 * dropped). QUOTA_EXCEEDED when it would take the owner past their stored bytes.
 */
export async function completeLocalRun(pool: pg.Pool, tap: Pick<TapJobRow, 'id' | 'owner'>, result: { contentType: string; bytes: Buffer }): Promise<boolean> {
  return underOwnerLock(pool, tap.owner, async (db) => {
    checkRoom(await usageOf(db, tap.owner, tap.id), result.bytes.byteLength, false);
    const { rowCount } = await db.query(
      `UPDATE tap_jobs SET phase = 'COMPLETED', result = $2, result_type = $3, upload_votable = NULL WHERE id = $1 AND phase = 'EXECUTING' AND ${UNLINKED}`,
      [tap.id, result.bytes, result.contentType],
    );
    return (rowCount ?? 0) > 0;
  });
}

/** The kept result of a local run, or undefined when there is none. */
export async function localResultOf(db: Queryable, id: string): Promise<{ contentType: string; bytes: Buffer } | undefined> {
  const { rows } = await db.query<{ result: unknown; type: unknown }>('SELECT result, result_type AS type FROM tap_jobs WHERE id = $1', [id]);
  const row = rows[0];
  if (!row || row.result === null) return undefined;
  if (!Buffer.isBuffer(row.result) || typeof row.type !== 'string') throw new ConstellationError('INTERNAL', `TAP job ${id}: column result (or result_type) is not what a kept result is`);
  return { contentType: row.type, bytes: row.result };
}

/** End a claimed or locally running job that never became a broker job or thread as ERROR (refused at RUN, or its local run failed). */
export async function failTapJob(db: Queryable, id: string, message: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE tap_jobs SET phase = 'ERROR', error_message = $2, upload_votable = NULL WHERE id = $1 AND phase IN ('PENDING', 'EXECUTING') AND ${UNLINKED}`, [id, message]);
  return (rowCount ?? 0) > 0;
}

/** ABORT a job that is not (yet) a broker job or thread: PENDING, claimed, or a local run; false when it is linked or already ended. */
export async function abortUnlinkedTapJob(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE tap_jobs SET phase = 'ABORTED', upload_votable = NULL WHERE id = $1 AND phase IN ('PENDING', 'EXECUTING') AND ${UNLINKED}`, [id]);
  return (rowCount ?? 0) > 0;
}

/** Delete a job (its broker job stays in the broker's own history). */
export async function deleteTapJob(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM tap_jobs WHERE id = $1', [id]);
}

/** What the clean-up found of a job it deleted or timed out: what the job runs, so the one broker that found it can stop that. */
export interface EndedTapJob {
  id: string;
  owner: string;
  jobId: string | null;
  threadId: string | null;
}

/** Delete up to `limit` jobs past their destruction time; returns each with what it ran. */
export async function deleteExpiredTapJobs(db: Queryable, limit: number): Promise<EndedTapJob[]> {
  const { rows } = await db.query<EndedTapJob>(
    `DELETE FROM tap_jobs WHERE id IN (SELECT id FROM tap_jobs WHERE destruction <= now() ORDER BY destruction LIMIT $1)
     RETURNING id, owner, job_id AS "jobId", thread_id AS "threadId"`,
    [limit],
  );
  return rows;
}

/**
 * Mark up to `limit` jobs still running past their EXECUTIONDURATION as timed out, once each (the
 * UPDATE re-checks timed_out_at IS NULL on the row it locks, so of several brokers one gets it).
 * One not linked to a broker job or thread is ABORTED here; for the others the caller cancels
 * the job or thread returned.
 */
export async function timeOutOverdueTapJobs(db: Queryable, limit: number): Promise<EndedTapJob[]> {
  const { rows } = await db.query<EndedTapJob>(
    `UPDATE tap_jobs t SET timed_out_at = now(),
       phase = CASE WHEN t.job_id IS NULL AND t.thread_join IS NULL THEN 'ABORTED' ELSE t.phase END,
       error_message = CASE WHEN t.job_id IS NULL AND t.thread_join IS NULL THEN 'the job ran past its EXECUTIONDURATION of ' || t.execution_duration || ' s and was aborted' ELSE t.error_message END,
       upload_votable = CASE WHEN t.job_id IS NULL AND t.thread_join IS NULL THEN NULL ELSE t.upload_votable END
     WHERE t.id IN (
       SELECT o.id FROM tap_jobs o
       LEFT JOIN jobs j ON j.id = o.job_id LEFT JOIN threads th ON th.id = o.thread_id
       WHERE o.started_at IS NOT NULL AND o.timed_out_at IS NULL AND o.execution_duration > 0
         AND o.started_at + o.execution_duration * interval '1 second' < now()
         AND ((o.job_id IS NULL AND o.thread_join IS NULL AND o.phase IN ('PENDING', 'EXECUTING'))
           OR j.state IN ('PENDING', 'QUEUED', 'EXECUTING')
           OR th.state IN ('QUEUED', 'RUNNING'))
       ORDER BY o.started_at LIMIT $1)
       AND t.timed_out_at IS NULL
     RETURNING t.id, t.owner, t.job_id AS "jobId", t.thread_id AS "threadId"`,
    [limit],
  );
  return rows;
}
