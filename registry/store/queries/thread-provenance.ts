/** Queries for a thread's provenance and re-runs: planning-time documents, checksums, kept credentials. */
import type { Queryable } from '../db.js';

/** The capability document a site had when a thread was planned: its stored id and sha256 digest. */
export interface ThreadDocument {
  siteId: string;
  documentId: number;
  digest: string;
  origin: string;
  receivedAt: string;
}

/** A site's kept credential for a thread, sealed. */
export interface SealedThreadCredential {
  siteId: string;
  sealed: string;
  expiresAt: Date | null;
}

/** The newest stored document of each of `siteIds` (sites with none are left out), by site id. */
export async function currentDocuments(db: Queryable, siteIds: readonly string[]): Promise<ThreadDocument[]> {
  const r = await db.query<{ siteId: string; documentId: string; digest: string; origin: string; receivedAt: Date }>(
    `SELECT DISTINCT ON (site_id) site_id AS "siteId", id::text AS "documentId", digest, origin, received_at AS "receivedAt"
     FROM site_documents WHERE site_id = ANY($1::text[]) ORDER BY site_id, id DESC`,
    [[...siteIds]],
  );
  return r.rows.map((d) => ({ siteId: d.siteId, documentId: Number(d.documentId), digest: d.digest, origin: d.origin, receivedAt: d.receivedAt.toISOString() }));
}

/** Read a thread's `documents` column (jsonb) back; entries that are not documents are dropped. */
export function readThreadDocuments(raw: unknown): ThreadDocument[] {
  if (!Array.isArray(raw)) return [];
  const out: ThreadDocument[] = [];
  for (const d of raw) {
    if (d === null || typeof d !== 'object') continue;
    const { siteId, documentId, digest, origin, receivedAt } = Object.fromEntries(Object.entries(d));
    if (typeof siteId !== 'string' || typeof documentId !== 'number' || typeof digest !== 'string' || typeof origin !== 'string' || typeof receivedAt !== 'string') continue;
    out.push({ siteId, documentId, digest, origin, receivedAt });
  }
  return out;
}

/** Keep a thread's sealed credentials (one per site). */
export async function saveThreadCredentials(db: Queryable, threadId: string, credentials: readonly SealedThreadCredential[]): Promise<void> {
  if (credentials.length === 0) return;
  await db.query(
    `INSERT INTO thread_credentials (thread_id, site_id, sealed, expires_at)
     SELECT $1, c.site_id, c.sealed, c.expires_at FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS c(site_id, sealed, expires_at)
     ON CONFLICT (thread_id, site_id) DO UPDATE SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at`,
    [threadId, credentials.map((c) => c.siteId), credentials.map((c) => c.sealed), credentials.map((c) => c.expiresAt)],
  );
}

/** A thread's sealed credentials. */
export async function sealedThreadCredentials(db: Queryable, threadId: string): Promise<SealedThreadCredential[]> {
  const r = await db.query<SealedThreadCredential>(
    'SELECT site_id AS "siteId", sealed, expires_at AS "expiresAt" FROM thread_credentials WHERE thread_id = $1 ORDER BY site_id',
    [threadId],
  );
  return r.rows;
}

/** Replace a kept thread credential by the same one sealed under the current key, if unchanged meanwhile. */
export async function resealThreadCredential(db: Queryable, threadId: string, siteId: string, previous: string, sealed: string): Promise<void> {
  await db.query('UPDATE thread_credentials SET sealed = $4 WHERE thread_id = $1 AND site_id = $2 AND sealed = $3', [threadId, siteId, previous, sealed]);
}

/** Forget a finished thread's credentials (nothing is submitted for it any more). */
export async function forgetThreadCredentials(db: Queryable, threadId: string): Promise<void> {
  await db.query('DELETE FROM thread_credentials WHERE thread_id = $1', [threadId]);
}

/** Record a step's result checksum. */
export async function setStepChecksum(db: Queryable, threadId: string, ordinal: number, checksum: string): Promise<void> {
  await db.query('UPDATE thread_steps SET checksum = $3 WHERE thread_id = $1 AND ordinal = $2', [threadId, ordinal, checksum]);
}

/** Record the result's checksum (set before the thread is finished). */
export async function setResultChecksum(db: Queryable, threadId: string, checksum: string): Promise<void> {
  await db.query('UPDATE threads SET result_checksum = $2 WHERE id = $1', [threadId, checksum]);
}
