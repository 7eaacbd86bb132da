/** Queries over the documents sites advertised. */
import type { Queryable } from '../db.js';
import type { DocumentRow } from './rows.js';

/**
 * The newest `limit` documents a site advertised, newest first, with their sizes but not their
 * bodies: a history of 14 MB documents is listed without reading 14 MB each.
 */
export async function documentsBySite(db: Queryable, siteId: string, limit: number): Promise<DocumentRow[]> {
  return (await db.query<DocumentRow>(
    `SELECT id, site_id AS "siteId", origin, digest, as_of AS "asOf", received_at AS "receivedAt",
       COALESCE(octet_length(body), octet_length(document::text))::int AS bytes
     FROM site_documents WHERE site_id = $1 ORDER BY id DESC LIMIT $2`, [siteId, limit])).rows;
}

/** The body of stored document `id` (undefined when there is none). */
export async function documentById(db: Queryable, id: number): Promise<unknown> {
  // Stored as text since migration 016 (JSON.parse gives `unknown`, as the jsonb column did); older rows as jsonb.
  const row = (await db.query<{ document: unknown; body: string | null }>('SELECT document, body FROM site_documents WHERE id = $1', [id])).rows[0];
  if (row === undefined) return undefined;
  return row.body === null ? row.document : JSON.parse(row.body);
}
