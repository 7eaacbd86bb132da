/** Queries over the sites table. */
import type pg from 'pg';
import { withTransaction, type Queryable } from '../db.js';
import type { SiteRow } from './rows.js';

/** A site's row as SiteRow names its fields (also returned by publish, so both read it alike). */
export const SITE_COLUMNS = `id, name, platform, url, contact, status, origin, as_of AS "asOf", published_at AS "publishedAt",
  registry_version AS "registryVersion", consecutive_failures AS "consecutiveFailures",
  CASE WHEN location_lat IS NULL THEN NULL ELSE json_build_object('lat', location_lat, 'lon', location_lon) END AS location`;

/** Every site, ordered by id. */
export async function listSites(db: Queryable): Promise<SiteRow[]> {
  return (await db.query<SiteRow>(`SELECT ${SITE_COLUMNS} FROM sites ORDER BY id`)).rows;
}

/** The sites with these ids (any order; missing ids are absent). */
export async function sitesByIds(db: Queryable, ids: readonly string[]): Promise<SiteRow[]> {
  return (await db.query<SiteRow>(`SELECT ${SITE_COLUMNS} FROM sites WHERE id = ANY($1)`, [ids])).rows;
}

/**
 * Register a site declared in federation.yaml, refreshing its name, platform, URL and location.
 * A row that changes is a new registry version (announced like a publish's), so every broker's
 * view and cached answers move to it; a row already as declared moves nothing. The site's row is
 * locked before the version's, the order a publish takes them in.
 */
export async function upsertConfiguredSite(
  pool: pg.Pool,
  site: { id: string; name: string; platform: string; url: string; location?: { lat: number; lon: number } },
): Promise<void> {
  await withTransaction(pool, async (client) => {
    const changed = await client.query(
      `INSERT INTO sites (id, name, platform, url, location_lat, location_lon) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, platform = EXCLUDED.platform, url = EXCLUDED.url,
         location_lat = COALESCE(EXCLUDED.location_lat, sites.location_lat), location_lon = COALESCE(EXCLUDED.location_lon, sites.location_lon)
       WHERE (sites.name, sites.platform, sites.url, sites.location_lat, sites.location_lon) IS DISTINCT FROM
         (EXCLUDED.name, EXCLUDED.platform, EXCLUDED.url, COALESCE(EXCLUDED.location_lat, sites.location_lat), COALESCE(EXCLUDED.location_lon, sites.location_lon))
       RETURNING id`,
      [site.id, site.name, site.platform, site.url, site.location?.lat ?? null, site.location?.lon ?? null],
    );
    if (changed.rowCount !== 1) return;
    await client.query(
      `WITH v AS (UPDATE registry_state SET version = version + 1 RETURNING version)
       UPDATE sites SET registry_version = v.version FROM v WHERE id = $1 RETURNING pg_notify('constellation_registry', v.version::text)`, [site.id]);
  });
}

/** Ids of sites that already hold an advertised document (so a seed must not overwrite it). */
export async function sitesWithDocuments(db: Queryable): Promise<Set<string>> {
  return new Set((await db.query<{ id: string }>('SELECT id FROM sites WHERE origin IS NOT NULL')).rows.map((r) => r.id));
}

/** The registry version: bumped by every publish. */
export async function registryVersion(db: Queryable): Promise<number> {
  return (await db.query<{ version: number }>('SELECT version FROM registry_state')).rows[0].version;
}

/** A site changed since some registry version: its current version, and the version its advertised rows last changed at. */
export interface SiteChange {
  id: string;
  registryVersion: number;
  /** Below or at the version asked about: only the site's own row changed (asOf, status, name…), not its replicas, services, compute or images. */
  rowsVersion: number;
}

/** Sites whose advertised state changed after `version`. */
export async function sitesChangedSince(db: Queryable, version: number): Promise<SiteChange[]> {
  return (await db.query<SiteChange>(
    'SELECT id, registry_version AS "registryVersion", rows_version AS "rowsVersion" FROM sites WHERE registry_version > $1', [version])).rows;
}
