/** Queries over the documents sites advertised. */
import type { Queryable } from '../db.js';
import type { DocumentRow } from './rows.js';

/** The newest `limit` documents a site advertised, newest first. */
export async function documentsBySite(db: Queryable, siteId: string, limit: number): Promise<DocumentRow[]> {
  return (await db.query<DocumentRow>(
    `SELECT id, site_id AS "siteId", origin, digest, as_of AS "asOf", received_at AS "receivedAt", document
     FROM site_documents WHERE site_id = $1 ORDER BY id DESC LIMIT $2`, [siteId, limit])).rows;
}
