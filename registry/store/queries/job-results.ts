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

/** The job is `broker`'s to write for: it holds the job's lease, or nobody does. */
const HOLDS_JOB = `EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2))`;

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

/** Append chunk `seq` of a result being kept. */
export async function appendJobResultChunk(db: Queryable, jobId: string, seq: number, data: Uint8Array): Promise<void> {
  await db.query(`INSERT INTO job_result_chunks (job_id, seq, data) VALUES ($1, $2, $3)`, [jobId, seq, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Mark a result complete with its size; readers see it from now on. */
export async function completeJobResult(db: Queryable, jobId: string, bytes: number, chunks: number): Promise<void> {
  await db.query(`UPDATE job_results SET complete = true, bytes = $2, chunks = $3 WHERE job_id = $1`, [jobId, bytes, chunks]);
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
