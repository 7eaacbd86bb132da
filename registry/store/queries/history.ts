/** Queries over stored documents and harvest runs. */
import type { Queryable } from '../db.js';
import type { DocumentRow, HarvestRunRow } from './rows.js';

/** The newest `limit` documents a site advertised, newest first. */
export async function documentsBySite(db: Queryable, siteId: string, limit: number): Promise<DocumentRow[]> {
  return (await db.query<DocumentRow>(
    `SELECT id, site_id AS "siteId", origin, digest, as_of AS "asOf", received_at AS "receivedAt", document
     FROM site_documents WHERE site_id = $1 ORDER BY id DESC LIMIT $2`, [siteId, limit])).rows;
}

const RUN_COLUMNS = `id, site_id AS "siteId", trigger, started_at AS "startedAt", finished_at AS "finishedAt", outcome,
  error_code AS "errorCode", error_message AS "errorMessage", bytes, duration_ms AS "durationMs"`;

/** The latest harvest run of each of these sites. */
export async function lastHarvestBySites(db: Queryable, siteIds: readonly string[]): Promise<HarvestRunRow[]> {
  return (await db.query<HarvestRunRow>(
    `SELECT DISTINCT ON (site_id) ${RUN_COLUMNS} FROM harvest_runs WHERE site_id = ANY($1) ORDER BY site_id, id DESC`, [siteIds])).rows;
}
