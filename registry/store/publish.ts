/** Replacing one site's advertised state with a validated document, in one transaction. */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { CapabilityDocument } from '../model/capability.js';
import { parseMocAscii } from '../coverage/moc.js';
import { withTransaction } from './db.js';

export type DocumentOrigin = 'seed' | 'harvest' | 'publish';

/** How many earlier documents of each site are kept for operators to compare. */
export const DOCUMENT_HISTORY = 20;

export interface PublishResult {
  siteId: string;
  registryVersion: number;
  documentId: number;
  replicas: number;
}

/**
 * Store `doc` (already validated) as the whole advertised state of its site: services,
 * replicas, columns, coverage, compute and images are replaced together, so a reader
 * sees either the old state or the new one, never a mix.
 */
export async function publishDocument(pool: pg.Pool, doc: CapabilityDocument, origin: DocumentOrigin): Promise<PublishResult> {
  const siteId = doc.site.id;
  const json = JSON.stringify(doc);
  const digest = createHash('sha256').update(json).digest('hex');
  // Coverage is parsed before the transaction so no lock is held while computing; each distinct
  // MOC once, giving the event loop back between MOCs (a document may hold thousands).
  const fractions = new Map<string, number>();
  let slice = performance.now();
  for (const d of doc.datasets) {
    if (d.coverage === undefined || fractions.has(d.coverage)) continue;
    fractions.set(d.coverage, parseMocAscii(d.coverage).skyFraction());
    if (performance.now() - slice > 15) {
      await yieldToLoop();
      slice = performance.now();
    }
  }
  // The document is validated, so its coverage is already in normal form.
  const coverage = doc.datasets.map((d) => (d.coverage === undefined ? null : { moc: d.coverage, fraction: fractions.get(d.coverage)! }));

  return withTransaction(pool, async (c) => {
    await c.query(
      `INSERT INTO sites (id, name, platform, url, location_lat, location_lon, contact, origin, as_of, published_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, platform = EXCLUDED.platform,
         url = COALESCE(EXCLUDED.url, sites.url), location_lat = COALESCE(EXCLUDED.location_lat, sites.location_lat),
         location_lon = COALESCE(EXCLUDED.location_lon, sites.location_lon), contact = EXCLUDED.contact,
         origin = EXCLUDED.origin, as_of = EXCLUDED.as_of, published_at = now()`,
      [siteId, doc.site.name, doc.site.platform, doc.site.url ?? null, doc.site.location?.lat ?? null, doc.site.location?.lon ?? null,
        doc.site.contact ?? null, origin, doc.asOf],
    );
    // Serialise publishers of the same site; other sites publish concurrently.
    await c.query('SELECT 1 FROM sites WHERE id = $1 FOR UPDATE', [siteId]);
    await c.query('DELETE FROM services WHERE site_id = $1', [siteId]);
    await c.query('DELETE FROM compute_pools WHERE site_id = $1', [siteId]);
    await c.query('DELETE FROM images WHERE site_id = $1', [siteId]);

    if (doc.services.length > 0) {
      await c.query(
        `INSERT INTO services (site_id, id, type, url, standard_id, title, upload, async, max_rec, upload_limit_bytes, languages, formats, auth)
         SELECT $1, s.id, s.type, s.url, s."standardId", s.title, COALESCE(s.upload, false), COALESCE(s.async, false), s."maxRec",
                s."uploadLimitBytes", COALESCE(s.languages, '{}'), COALESCE(s.formats, '{}'), COALESCE(s.auth, '{}')
         FROM jsonb_to_recordset($2::jsonb) AS s(id text, type text, url text, "standardId" text, title text, upload boolean, async boolean,
              "maxRec" bigint, "uploadLimitBytes" bigint, languages text[], formats text[], auth text[])`,
        [siteId, JSON.stringify(doc.services)],
      );
    }

    let replicaIds: number[] = [];
    if (doc.datasets.length > 0) {
      const rows = doc.datasets.map((d) => ({
        id: d.id, title: d.title ?? null, description: d.description ?? null, service: d.service, table: d.table,
        rows: d.rows ?? null, rowBytes: d.rowBytes ?? null, ra: d.position?.ra ?? null, dec: d.position?.dec ?? null,
        public: d.access.public, groups: d.access.groups ?? [],
      }));
      const payload = JSON.stringify(rows);
      // A canonical dataset's title comes from whichever replica first described it.
      await c.query(
        `INSERT INTO datasets (id, title, description)
         SELECT r.id, r.title, r.description FROM jsonb_to_recordset($1::jsonb) AS r(id text, title text, description text)
         ON CONFLICT (id) DO UPDATE SET title = COALESCE(datasets.title, EXCLUDED.title),
           description = COALESCE(datasets.description, EXCLUDED.description)`,
        [payload],
      );
      const inserted = await c.query<{ id: number; dataset_id: string }>(
        `INSERT INTO replicas (dataset_id, site_id, service_id, local_table, title, description, rows, row_bytes, ra_column, dec_column, public, groups)
         SELECT r.id, $1, r.service, r."table", r.title, r.description, r.rows, r."rowBytes", r.ra, r.dec, r.public, r.groups
         FROM jsonb_to_recordset($2::jsonb) AS r(id text, title text, description text, service text, "table" text,
              rows bigint, "rowBytes" integer, ra text, dec text, public boolean, groups text[])
         RETURNING id, dataset_id`,
        [siteId, payload],
      );
      // Dataset ids are unique within a document, so they pair the new replica ids with the datasets.
      const idByDataset = new Map(inserted.rows.map((r) => [r.dataset_id, r.id]));
      replicaIds = doc.datasets.map((d) => idByDataset.get(d.id)!);

      const columns = doc.datasets.flatMap((d, i) =>
        (d.columns ?? []).map((col, j) => ({ replica: replicaIds[i], ordinal: j, ...col })),
      );
      if (columns.length > 0) {
        await c.query(
          `INSERT INTO replica_columns (replica_id, ordinal, name, canonical, datatype, arraysize, xtype, unit, ucd, description, indexed)
           SELECT c.replica, c.ordinal, c.name, c.canonical, c.datatype, c.arraysize, c.xtype, c.unit, c.ucd, c.description, c.indexed
           FROM jsonb_to_recordset($1::jsonb) AS c(replica bigint, ordinal int, name text, canonical text, datatype text, arraysize text,
                xtype text, unit text, ucd text, description text, indexed boolean)`,
          [JSON.stringify(columns)],
        );
      }
      const cov = coverage.flatMap((m, i) => (m ? [{ replica: replicaIds[i], moc: m.moc, fraction: m.fraction }] : []));
      if (cov.length > 0) {
        await c.query(
          `INSERT INTO coverage (replica_id, moc, sky_fraction)
           SELECT c.replica, c.moc, c.fraction FROM jsonb_to_recordset($1::jsonb) AS c(replica bigint, moc text, fraction double precision)`,
          [JSON.stringify(cov)],
        );
      }
    }
    await c.query(
      `DELETE FROM datasets d WHERE NOT EXISTS (SELECT 1 FROM replicas r WHERE r.dataset_id = d.id)`,
    );

    if (doc.compute.length > 0) {
      await c.query(
        `INSERT INTO compute_pools (site_id, id, kind, service_id, cores, memory_gb, gpus, free_cores, free_memory_gb, queue_wait_s,
                                    max_walltime_s, max_cores_per_job, max_memory_gb_per_job)
         SELECT $1, p.id, p.kind, p.service, p.cores, p."memoryGb", COALESCE(p.gpus, 0), p."freeCores", p."freeMemoryGb", p."queueWaitS",
                p."maxWalltimeS", p."maxCoresPerJob", p."maxMemoryGbPerJob"
         FROM jsonb_to_recordset($2::jsonb) AS p(id text, kind text, service text, cores int, "memoryGb" double precision, gpus int,
              "freeCores" int, "freeMemoryGb" double precision, "queueWaitS" double precision, "maxWalltimeS" int,
              "maxCoresPerJob" int, "maxMemoryGbPerJob" double precision)`,
        [siteId, JSON.stringify(doc.compute)],
      );
    }
    if (doc.images.length > 0) {
      await c.query(
        `INSERT INTO images (site_id, ref, digest, arch, types, software, compute)
         SELECT $1, m.ref, m.digest, m.arch, m.types, COALESCE(m.software, '{}'), m.compute
         FROM jsonb_to_recordset($2::jsonb) AS m(ref text, digest text, arch text, types text[], software text[], compute text[])`,
        [siteId, JSON.stringify(doc.images)],
      );
    }

    const stored = await c.query<{ id: number }>(
      `INSERT INTO site_documents (site_id, origin, digest, as_of, document) VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id`,
      [siteId, origin, digest, doc.asOf, json],
    );
    await c.query(
      `DELETE FROM site_documents WHERE site_id = $1 AND id NOT IN
         (SELECT id FROM site_documents WHERE site_id = $1 ORDER BY id DESC LIMIT $2)`,
      [siteId, DOCUMENT_HISTORY],
    );
    const version = await c.query<{ version: number }>('UPDATE registry_state SET version = version + 1 RETURNING version');
    const registryVersion = version.rows[0].version;
    await c.query('UPDATE sites SET registry_version = $2 WHERE id = $1', [siteId, registryVersion]);
    await c.query(`SELECT pg_notify('constellation_registry', $1)`, [String(registryVersion)]);
    return { siteId, registryVersion, documentId: stored.rows[0].id, replicas: replicaIds.length };
  });
}
