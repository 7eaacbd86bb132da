/** Queries on job staging records: where a job's result was written in the user's own space. */
import type { Queryable } from '../db.js';

/** One job's staging record. */
export interface JobStagingRow {
  jobId: string;
  siteId: string;
  name: string;
  state: 'STAGING' | 'DONE' | 'FAILED';
  location: string | null;
  bytes: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  startedAt: Date;
  finishedAt: Date | null;
}

const COLUMNS = `job_id AS "jobId", site_id AS "siteId", name, state, location, bytes, error_code AS "errorCode",
  error_message AS "errorMessage", started_at AS "startedAt", finished_at AS "finishedAt"`;

/**
 * Start staging a job's result: true when this caller now holds it (no record yet, or one whose
 * holder's lease ran out while STAGING); false when it is done, failed, or held by another.
 */
export async function claimJobStaging(db: Queryable, jobId: string, siteId: string, name: string, leaseMs: number): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO job_staging (job_id, site_id, name, state, lease_until)
     VALUES ($1, $2, $3, 'STAGING', now() + $4::bigint * interval '1 millisecond')
     ON CONFLICT (job_id) DO UPDATE SET site_id = EXCLUDED.site_id, name = EXCLUDED.name, started_at = now(), lease_until = EXCLUDED.lease_until
       WHERE job_staging.state = 'STAGING' AND job_staging.lease_until < now()
     RETURNING job_id`,
    [jobId, siteId, name, leaseMs],
  );
  return r.rows.length === 1;
}

/** Record where the result went. */
export async function completeJobStaging(db: Queryable, jobId: string, location: string, bytes: number): Promise<void> {
  await db.query(
    `UPDATE job_staging SET state = 'DONE', location = $2, bytes = $3, finished_at = now(), lease_until = NULL WHERE job_id = $1`,
    [jobId, location, bytes],
  );
}

/** Record that staging failed, with its coded error. */
export async function failJobStaging(db: Queryable, jobId: string, errorCode: string, errorMessage: string): Promise<void> {
  await db.query(
    `UPDATE job_staging SET state = 'FAILED', error_code = $2, error_message = $3, finished_at = now(), lease_until = NULL WHERE job_id = $1`,
    [jobId, errorCode, errorMessage.slice(0, 4000)],
  );
}

/** The staging record of a job, if it asked for one and staging started. */
export async function jobStaging(db: Queryable, jobId: string): Promise<JobStagingRow | undefined> {
  const r = await db.query<JobStagingRow>(`SELECT ${COLUMNS} FROM job_staging WHERE job_id = $1`, [jobId]);
  return r.rows[0];
}

/**
 * Completed jobs that asked for staging and have no finished record: never started (the broker
 * stopped between COMPLETED and staging) or started by a broker whose lease ran out. Oldest first.
 */
export async function jobsDueForStaging(db: Queryable, limit: number): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `SELECT j.id FROM jobs j LEFT JOIN job_staging s ON s.job_id = j.id
     WHERE j.state = 'COMPLETED' AND jsonb_typeof(j.request -> 'stageTo') = 'object'
       AND (s.job_id IS NULL OR (s.state = 'STAGING' AND s.lease_until < now()))
     ORDER BY j.finished_at NULLS LAST, j.id LIMIT $1`,
    [limit],
  );
  return r.rows.map((row) => row.id);
}
