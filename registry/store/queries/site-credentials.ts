/**
 * Queries on sealed per-user site credentials (linked tokens) and the credentials kept for each
 * job. Only sealed text passes through here: sealing and opening happen in broker/auth.
 */
import type { Queryable } from '../db.js';

/** The sealed token `owner` linked for `siteId`, or undefined. */
export async function sealedSiteCredential(db: Queryable, owner: string, siteId: string): Promise<string | undefined> {
  return (await db.query<{ sealed: string }>('SELECT sealed FROM site_credentials WHERE owner = $1 AND site_id = $2', [owner, siteId])).rows[0]?.sealed;
}

/** Store (or replace) `owner`'s sealed token for `siteId`. */
export async function upsertSiteCredential(db: Queryable, owner: string, siteId: string, sealed: string): Promise<void> {
  await db.query(
    `INSERT INTO site_credentials (owner, site_id, sealed) VALUES ($1, $2, $3)
     ON CONFLICT (owner, site_id) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()`,
    [owner, siteId, sealed],
  );
}

/**
 * Replace a sealed value by the same plaintext sealed under the current key, only if it is still
 * `previous` (a link replaced meanwhile is left alone).
 */
export async function resealSiteCredential(db: Queryable, owner: string, siteId: string, previous: string, sealed: string): Promise<void> {
  await db.query('UPDATE site_credentials SET sealed = $4 WHERE owner = $1 AND site_id = $2 AND sealed = $3', [owner, siteId, previous, sealed]);
}

/**
 * Forget `owner`'s token for `siteId`, and the copies kept with their jobs and threads at that
 * site (an unlinked token is used for nothing more); true when a token was linked.
 */
export async function deleteSiteCredential(db: Queryable, owner: string, siteId: string): Promise<boolean> {
  const res = await db.query<{ linked: boolean }>(
    `WITH kept AS (
       DELETE FROM job_credentials c USING jobs j WHERE c.job_id = j.id AND j.owner = $1 AND c.site_id = $2),
     threaded AS (
       DELETE FROM thread_credentials c USING threads t WHERE c.thread_id = t.id AND t.owner = $1 AND c.site_id = $2),
     linked AS (DELETE FROM site_credentials WHERE owner = $1 AND site_id = $2 RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM linked) AS linked`,
    [owner, siteId]);
  return res.rows[0]?.linked === true;
}

/** Ids of the sites `owner` linked a token for, sorted. */
export async function linkedSiteIdsOf(db: Queryable, owner: string): Promise<string[]> {
  return (await db.query<{ siteId: string }>('SELECT site_id AS "siteId" FROM site_credentials WHERE owner = $1 ORDER BY site_id', [owner])).rows.map((r) => r.siteId);
}

/** One sealed job credential to keep. */
export interface SealedJobCredential {
  siteId: string;
  sealed: string;
  expiresAt: Date | null;
}

/** Keep the sealed credentials a job runs with, one per candidate site (replacing any kept before). */
export async function saveJobCredentials(db: Queryable, jobId: string, credentials: readonly SealedJobCredential[]): Promise<void> {
  if (credentials.length === 0) return;
  await db.query(
    `INSERT INTO job_credentials (job_id, site_id, sealed, expires_at)
     SELECT $1, c.site_id, c.sealed, c.expires_at FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS c(site_id, sealed, expires_at)
     ON CONFLICT (job_id, site_id) DO UPDATE SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at`,
    [jobId, credentials.map((c) => c.siteId), credentials.map((c) => c.sealed), credentials.map((c) => c.expiresAt)],
  );
}

/** The sealed credential kept for `jobId` at `siteId`, or undefined. */
export async function sealedJobCredential(db: Queryable, jobId: string, siteId: string): Promise<string | undefined> {
  return (await db.query<{ sealed: string }>('SELECT sealed FROM job_credentials WHERE job_id = $1 AND site_id = $2', [jobId, siteId])).rows[0]?.sealed;
}

/** Replace a kept job credential by the same one sealed under the current key, if unchanged meanwhile. */
export async function resealJobCredential(db: Queryable, jobId: string, siteId: string, previous: string, sealed: string): Promise<void> {
  await db.query('UPDATE job_credentials SET sealed = $4 WHERE job_id = $1 AND site_id = $2 AND sealed = $3', [jobId, siteId, previous, sealed]);
}
