/** Queries on kept job results: a header row per result and its bytes in numbered chunks. */
import type { Queryable } from '../db.js';

/** A kept result's header. */
export interface JobResultRow {
  jobId: string;
  contentType: string;
  bytes: number;
  chunks: number;
  complete: boolean;
  storedAt: Date;
  expiresAt: Date;
  expiredAt: Date | null;
}

const COLUMNS = `job_id AS "jobId", content_type AS "contentType", bytes, chunks, complete, stored_at AS "storedAt",
  expires_at AS "expiresAt", expired_at AS "expiredAt"`;

/**
 * The job's answer is `broker`'s to write: the job is still being submitted (PENDING, placed at
 * no site) under `broker`'s lease. Once it is placed, or another broker has taken the submit
 * over, the kept answer is no longer any writer's to touch: a stale submitter (its lease lapsed
 * under load) would otherwise delete a COMPLETED job's answer, or finish another's write.
 */
const HOLDS_JOB = `EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state = 'PENDING' AND site_job_id IS NULL AND lease_owner = $2)`;

/**
 * Start keeping a result for `broker` (replacing an unfinished or earlier one for the same job);
 * false when another broker has taken the job over, whose result must not be touched.
 */
export async function beginJobResult(db: Queryable, jobId: string, broker: string, contentType: string, retentionMs: number): Promise<boolean> {
  await db.query(`DELETE FROM job_results WHERE job_id = $1 AND ${HOLDS_JOB}`, [jobId, broker]);
  const inserted = await db.query(
    `INSERT INTO job_results (job_id, content_type, expires_at) SELECT $1, $3, now() + $4::bigint * interval '1 millisecond' WHERE ${HOLDS_JOB}`,
    [jobId, broker, contentType, retentionMs],
  );
  return (inserted.rowCount ?? 0) > 0;
}

/** Append chunk `seq` of `broker`'s result being kept; false when the job is no longer its to write. */
export async function appendJobResultChunk(db: Queryable, jobId: string, broker: string, seq: number, data: Uint8Array): Promise<boolean> {
  const inserted = await db.query(
    `INSERT INTO job_result_chunks (job_id, seq, data) SELECT $1, $3, $4 WHERE ${HOLDS_JOB} AND EXISTS (SELECT 1 FROM job_results WHERE job_id = $1 AND NOT complete)`,
    [jobId, broker, seq, Buffer.from(data.buffer, data.byteOffset, data.byteLength)],
  );
  return (inserted.rowCount ?? 0) > 0;
}

/** Mark `broker`'s result complete with its size (readers see it from now on); false when the job is no longer its to write. */
export async function completeJobResult(db: Queryable, jobId: string, broker: string, bytes: number, chunks: number): Promise<boolean> {
  const updated = await db.query(`UPDATE job_results SET complete = true, bytes = $3, chunks = $4 WHERE job_id = $1 AND NOT complete AND ${HOLDS_JOB}`, [jobId, broker, bytes, chunks]);
  return (updated.rowCount ?? 0) > 0;
}

/** Forget `broker`'s unfinished write that failed (not another broker's, which took the job over). */
export async function dropJobResult(db: Queryable, jobId: string, broker: string): Promise<void> {
  await db.query(`DELETE FROM job_results WHERE job_id = $1 AND NOT complete AND ${HOLDS_JOB}`, [jobId, broker]);
}

/** A result's header, complete or not. */
export async function jobResultHeader(db: Queryable, jobId: string): Promise<JobResultRow | undefined> {
  return (await db.query<JobResultRow>(`SELECT ${COLUMNS} FROM job_results WHERE job_id = $1`, [jobId])).rows[0];
}

/** Chunk `seq` of a result; undefined when it is gone (expired meanwhile). */
export async function jobResultChunk(db: Queryable, jobId: string, seq: number): Promise<Buffer | undefined> {
  return (await db.query<{ data: Buffer }>(`SELECT data FROM job_result_chunks WHERE job_id = $1 AND seq = $2`, [jobId, seq])).rows[0]?.data;
}

/**
 * Retention: remove the chunks of every result past its expiry (keeping the header, which says
 * when it expired) and every write left unfinished for longer than `staleMs` (a broker died
 * mid-write). Returns how many results were removed.
 */
export async function expireJobResults(db: Queryable, staleMs: number): Promise<number> {
  const expired = await db.query<{ n: number }>(
    `WITH gone AS (
       UPDATE job_results SET expired_at = now() WHERE expired_at IS NULL AND complete AND expires_at <= now() RETURNING job_id),
     chunks AS (DELETE FROM job_result_chunks c USING gone WHERE c.job_id = gone.job_id)
     SELECT count(*)::int AS n FROM gone`,
  );
  const stale = await db.query(`DELETE FROM job_results WHERE NOT complete AND stored_at <= now() - $1::bigint * interval '1 millisecond'`, [staleMs]);
  return expired.rows[0].n + (stale.rowCount ?? 0);
}
