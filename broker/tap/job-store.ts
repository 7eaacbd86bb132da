/** The TAP facade's UWS jobs in the database (table tap_jobs): parameters until RUN, then the broker job (or cross-match thread) they became. */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../registry/store/db.js';
import type { CrossSiteJoin } from './crossmatch-join.js';

/** One TAP job as stored. */
export interface TapJobRow {
  id: string;
  owner: string;
  /** The TAP parameters (upper-case names) as given. */
  params: Record<string, string>;
  uploadName: string | null;
  uploadVotable: string | null;
  /** The phase before the job ran (PENDING), or how it ended without running (ERROR, ABORTED). */
  phase: 'PENDING' | 'COMPLETED' | 'ERROR' | 'ABORTED';
  /** The broker job it became on RUN. */
  jobId: string | null;
  /** The cross-match thread it became on RUN instead (a positional join across sites), and how its rows map to the query's. */
  threadId: string | null;
  threadJoin: CrossSiteJoin | null;
  errorMessage: string | null;
  executionDuration: number;
  destruction: Date;
  createdAt: Date;
  startedAt: Date | null;
}

const COLUMNS = `id, owner, params, upload_name AS "uploadName", upload_votable AS "uploadVotable", phase, job_id AS "jobId",
  thread_id AS "threadId", thread_join AS "threadJoin", error_message AS "errorMessage", execution_duration AS "executionDuration", destruction, created_at AS "createdAt", started_at AS "startedAt"`;

const T_COLUMNS = `t.id, t.owner, t.params, t.upload_name AS "uploadName", NULL AS "uploadVotable", t.phase, t.job_id AS "jobId",
  t.thread_id AS "threadId", t.thread_join AS "threadJoin", t.error_message AS "errorMessage", t.execution_duration AS "executionDuration", t.destruction, t.created_at AS "createdAt", t.started_at AS "startedAt"`;

/** Create a PENDING job. */
export async function createTapJob(db: Queryable, job: { owner: string; params: Record<string, string>; upload?: { name: string; votable: string }; executionDuration: number; destruction: Date }): Promise<TapJobRow> {
  const { rows } = await db.query<TapJobRow>(
    `INSERT INTO tap_jobs (id, owner, params, upload_name, upload_votable, execution_duration, destruction) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [randomUUID(), job.owner, JSON.stringify(job.params), job.upload?.name ?? null, job.upload?.votable ?? null, job.executionDuration, job.destruction],
  );
  return rows[0];
}

/** The owner's job `id` (undefined for another owner's, as for one that does not exist); jobs past their destruction time are gone. */
export async function tapJobById(db: Queryable, id: string, owner: string): Promise<TapJobRow | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const { rows } = await db.query<TapJobRow>(`SELECT ${COLUMNS} FROM tap_jobs WHERE id = $1 AND owner = $2 AND destruction > now()`, [id, owner]);
  return rows[0];
}

/** The owner's jobs, newest first: those created after `after`, the `last` most recent, their phase filtered by the caller. */
export async function tapJobsOf(db: Queryable, owner: string, filter: { after?: Date; last?: number }): Promise<(TapJobRow & { jobState: string | null; threadState: string | null })[]> {
  const params: unknown[] = [owner];
  let where = 't.owner = $1 AND t.destruction > now()';
  if (filter.after) {
    params.push(filter.after);
    where += ` AND t.created_at > $${params.length}`;
  }
  params.push(filter.last ?? 1000);
  const { rows } = await db.query<TapJobRow & { jobState: string | null; threadState: string | null }>(
    `SELECT ${T_COLUMNS}, j.state AS "jobState", th.state AS "threadState" FROM tap_jobs t LEFT JOIN jobs j ON j.id = t.job_id LEFT JOIN threads th ON th.id = t.thread_id
     WHERE ${where} ORDER BY t.created_at DESC, t.id LIMIT $${params.length}`,
    params,
  );
  return rows;
}

/** Change a PENDING job's parameters; false when it is no longer PENDING. */
export async function updatePendingTapJob(db: Queryable, id: string, change: { params?: Record<string, string>; upload?: { name: string; votable: string } }): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE tap_jobs SET params = COALESCE($2, params), upload_name = COALESCE($3, upload_name), upload_votable = COALESCE($4, upload_votable)
     WHERE id = $1 AND phase = 'PENDING' AND job_id IS NULL AND thread_join IS NULL`,
    [id, change.params ? JSON.stringify(change.params) : null, change.upload?.name ?? null, change.upload?.votable ?? null],
  );
  return (rowCount ?? 0) > 0;
}

/** Set the destruction time or execution duration (any phase). */
export async function setTapJobTimes(db: Queryable, id: string, change: { destruction?: Date; executionDuration?: number }): Promise<void> {
  await db.query('UPDATE tap_jobs SET destruction = COALESCE($2, destruction), execution_duration = COALESCE($3, execution_duration) WHERE id = $1', [id, change.destruction ?? null, change.executionDuration ?? null]);
}

/** Claim a PENDING job for running (once: a second RUN finds it claimed); false when it is not PENDING. */
export async function claimTapJobRun(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE tap_jobs SET started_at = now() WHERE id = $1 AND phase = 'PENDING' AND job_id IS NULL AND started_at IS NULL`, [id]);
  return (rowCount ?? 0) > 0;
}

/** Record the broker job a run became (its upload is no longer needed: the job holds it). */
export async function linkTapJob(db: Queryable, id: string, jobId: string): Promise<void> {
  await db.query('UPDATE tap_jobs SET job_id = $2, upload_votable = NULL WHERE id = $1', [id, jobId]);
}

/** Record the cross-match thread a run became, with how its rows map to the query's (the upload is not needed: a join has none). */
export async function linkTapThread(db: Queryable, id: string, threadId: string, join: CrossSiteJoin): Promise<void> {
  await db.query('UPDATE tap_jobs SET thread_id = $2, thread_join = $3, upload_votable = NULL WHERE id = $1', [id, threadId, JSON.stringify(join)]);
}

/** End a job that never became a broker job or thread (refused at RUN, or aborted while PENDING). */
export async function endTapJob(db: Queryable, id: string, phase: 'COMPLETED' | 'ERROR' | 'ABORTED', message: string | null): Promise<void> {
  await db.query('UPDATE tap_jobs SET phase = $2, error_message = $3 WHERE id = $1 AND job_id IS NULL AND thread_join IS NULL', [id, phase, message]);
}

/** Delete a job (its broker job stays in the broker's own history). */
export async function deleteTapJob(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM tap_jobs WHERE id = $1', [id]);
}

/** Delete up to `limit` jobs past their destruction time; returns each with what it ran, so the one broker that deleted it can stop that. */
export async function deleteExpiredTapJobs(db: Queryable, limit: number): Promise<{ id: string; owner: string; jobId: string | null; threadId: string | null }[]> {
  const { rows } = await db.query<{ id: string; owner: string; jobId: string | null; threadId: string | null }>(
    `DELETE FROM tap_jobs WHERE id IN (SELECT id FROM tap_jobs WHERE destruction <= now() ORDER BY destruction LIMIT $1)
     RETURNING id, owner, job_id AS "jobId", thread_id AS "threadId"`,
    [limit],
  );
  return rows;
}
