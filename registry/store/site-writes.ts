/**
 * Writing a site's changes (site-diff.ts) inside the publishing transaction: one set-based
 * statement per table and kind of change, and none for a table with nothing to change, so a
 * document that changes one row writes one row.
 */
import type { Queryable } from './db.js';
import type { DatasetRow } from './queries/rows.js';
import type { SiteChanges } from './site-diff.js';
import type { SiteState, StoredReplica } from './site-state.js';

/** What the writes left that the caller cannot know beforehand (the in-memory view takes it instead of reading it back). */
export interface AppliedChanges {
  /** The id of every replica the site held or holds, by dataset id (a removed one's too). */
  replicaIds: Map<string, number>;
  /** Canonical datasets created or filled in, as they now are. */
  datasetsWritten: DatasetRow[];
  /** Canonical datasets deleted: this publish let go of their last replica. */
  datasetsDeleted: string[];
}

/**
 * Apply `changes` to the rows of `siteId`, whose stored state was `stored`. `fractionOf` gives
 * the sky fraction of a new coverage. The caller holds the site's row lock, so no other
 * publisher writes these rows meanwhile; canonical datasets are shared between sites and are
 * locked here first, always in id order.
 */
export async function applySiteChanges(db: Queryable, siteId: string, changes: SiteChanges, stored: SiteState<StoredReplica>, fractionOf: (moc: string) => number): Promise<AppliedChanges> {
  const datasetsWritten = await upsertDatasets(db, changes);
  // Replicas that went take their columns and coverage with them (ON DELETE CASCADE).
  if (changes.replicas.remove.length > 0) {
    await db.query('DELETE FROM replicas WHERE id = ANY($1::bigint[])', [changes.replicas.remove.map((r) => r.id)]);
  }
  // Services before replicas (a replica may move to a new service), removals after them (a
  // removed service would take with it any replica still on it).
  if (changes.services.upsert.length > 0) {
    await db.query(
      `INSERT INTO services (site_id, id, type, url, standard_id, title, upload, async, max_rec, upload_limit_bytes, languages, formats, auth)
       SELECT $1, s.id, s.type, s.url, s."standardId", s.title, s.upload, s.async, s."maxRec", s."uploadLimitBytes", s.languages, s.formats, s.auth
       FROM json_to_recordset($2::json) AS s(id text, type text, url text, "standardId" text, title text, upload boolean, async boolean,
            "maxRec" bigint, "uploadLimitBytes" bigint, languages text[], formats text[], auth text[])
       ON CONFLICT (site_id, id) DO UPDATE SET type = EXCLUDED.type, url = EXCLUDED.url, standard_id = EXCLUDED.standard_id,
         title = EXCLUDED.title, upload = EXCLUDED.upload, async = EXCLUDED.async, max_rec = EXCLUDED.max_rec,
         upload_limit_bytes = EXCLUDED.upload_limit_bytes, languages = EXCLUDED.languages, formats = EXCLUDED.formats, auth = EXCLUDED.auth`,
      [siteId, JSON.stringify(changes.services.upsert)],
    );
  }
  const replicaIds = new Map([...stored.replicas].map(([datasetId, r]) => [datasetId, r.id]));
  if (changes.replicas.upsert.length > 0) {
    // A replica keeps its id while its site keeps its dataset, whatever else changes.
    const written = await db.query<{ id: number; datasetId: string }>(
      `INSERT INTO replicas (dataset_id, site_id, service_id, local_table, title, description, rows, row_bytes, ra_column, dec_column, public, groups)
       SELECT r."datasetId", $1, r."serviceId", r."table", r.title, r.description, r.rows, r."rowBytes", r."raColumn", r."decColumn", r.public, r.groups
       FROM json_to_recordset($2::json) AS r("datasetId" text, "serviceId" text, "table" text, title text, description text, rows bigint,
            "rowBytes" integer, "raColumn" text, "decColumn" text, public boolean, groups text[])
       ON CONFLICT (site_id, dataset_id) DO UPDATE SET service_id = EXCLUDED.service_id, local_table = EXCLUDED.local_table,
         title = EXCLUDED.title, description = EXCLUDED.description, rows = EXCLUDED.rows, row_bytes = EXCLUDED.row_bytes,
         ra_column = EXCLUDED.ra_column, dec_column = EXCLUDED.dec_column, public = EXCLUDED.public, groups = EXCLUDED.groups
       RETURNING id, dataset_id AS "datasetId"`,
      [siteId, JSON.stringify(changes.replicas.upsert)],
    );
    for (const r of written.rows) replicaIds.set(r.datasetId, r.id);
  }
  const idOf = (datasetId: string): number => {
    const id = replicaIds.get(datasetId);
    // Every change names a replica that is stored or was just written; anything else is a bug here.
    if (id === undefined) throw new Error(`publish: no replica of "${datasetId}" at site "${siteId}"`);
    return id;
  };
  await writeColumns(db, changes, idOf);
  await writeCoverage(db, changes, idOf, fractionOf);
  if (changes.services.remove.length > 0) {
    await db.query('DELETE FROM services WHERE site_id = $1 AND id = ANY($2::text[])', [siteId, changes.services.remove]);
  }
  await writeCompute(db, siteId, changes);
  await writeImages(db, siteId, changes);
  let datasetsDeleted: string[] = [];
  if (changes.datasets.released.length > 0) {
    // Only the datasets this publish let go can have lost their last replica.
    datasetsDeleted = (await db.query<{ id: string }>(
      'DELETE FROM datasets d WHERE d.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.dataset_id = d.id) RETURNING d.id',
      [changes.datasets.released],
    )).rows.map((r) => r.id);
  }
  return { replicaIds, datasetsWritten, datasetsDeleted };
}

/**
 * Create the canonical datasets of new replicas, fill in a missing title or description, and
 * lock every dataset this publish writes a replica of or lets go of: all in one statement, in id
 * order. Datasets are shared between sites, so publishers of different sites meet here; taking
 * every such lock in one ordered pass means they never wait on each other in a cycle, and a
 * dataset about to gain a replica at another site is not deleted under it (the deleting
 * statement runs after the locks are granted, so it sees the other's commit).
 */
async function upsertDatasets(db: Queryable, changes: SiteChanges): Promise<DatasetRow[]> {
  const { upsert, released } = changes.datasets;
  if (upsert.length === 0 && released.length === 0) return [];
  // A dataset let go of still has this site's replica until later in the transaction, so its row
  // exists: it conflicts, and is locked without being changed.
  const rows = [...upsert, ...released.map((id) => ({ id, title: null, description: null }))];
  // A dataset's title comes from whichever replica first described it: an existing row is only
  // filled in where it has nothing, and otherwise left as it is (though locked: ON CONFLICT DO
  // UPDATE locks the rows its WHERE skips). The rows returned are those inserted or filled in.
  return (await db.query<DatasetRow>(
    `INSERT INTO datasets (id, title, description)
     SELECT d.id, d.title, d.description FROM json_to_recordset($1::json) AS d(id text, title text, description text) ORDER BY d.id
     ON CONFLICT (id) DO UPDATE SET title = COALESCE(datasets.title, EXCLUDED.title), description = COALESCE(datasets.description, EXCLUDED.description)
     WHERE (datasets.title IS NULL AND EXCLUDED.title IS NOT NULL) OR (datasets.description IS NULL AND EXCLUDED.description IS NOT NULL)
     RETURNING datasets.id, datasets.title, datasets.description`,
    [JSON.stringify(rows)],
  )).rows;
}

async function writeColumns(db: Queryable, changes: SiteChanges, idOf: (datasetId: string) => number): Promise<void> {
  const { trim, upsert } = changes.columns;
  if (trim.length > 0) {
    await db.query(
      `DELETE FROM replica_columns c USING unnest($1::bigint[], $2::int[]) AS t(replica, keep)
       WHERE c.replica_id = t.replica AND c.ordinal >= t.keep`,
      [trim.map((t) => idOf(t.datasetId)), trim.map((t) => t.keep)],
    );
  }
  if (upsert.length === 0) return;
  await db.query(
    `INSERT INTO replica_columns (replica_id, ordinal, name, canonical, datatype, arraysize, xtype, unit, ucd, description, indexed)
     SELECT c.replica, c.ordinal, c.name, c.canonical, c.datatype, c.arraysize, c.xtype, c.unit, c.ucd, c.description, c.indexed
     FROM json_to_recordset($1::json) AS c(replica bigint, ordinal int, name text, canonical text, datatype text, arraysize text,
          xtype text, unit text, ucd text, description text, indexed boolean)
     ON CONFLICT (replica_id, ordinal) DO UPDATE SET name = EXCLUDED.name, canonical = EXCLUDED.canonical, datatype = EXCLUDED.datatype,
       arraysize = EXCLUDED.arraysize, xtype = EXCLUDED.xtype, unit = EXCLUDED.unit, ucd = EXCLUDED.ucd,
       description = EXCLUDED.description, indexed = EXCLUDED.indexed`,
    [JSON.stringify(upsert.map(({ datasetId, ...column }) => ({ replica: idOf(datasetId), ...column })))],
  );
}

async function writeCoverage(db: Queryable, changes: SiteChanges, idOf: (datasetId: string) => number, fractionOf: (moc: string) => number): Promise<void> {
  const { remove, upsert } = changes.coverage;
  if (remove.length > 0) await db.query('DELETE FROM coverage WHERE replica_id = ANY($1::bigint[])', [remove.map(idOf)]);
  if (upsert.length === 0) return;
  await db.query(
    `INSERT INTO coverage (replica_id, moc, sky_fraction) SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[])
     ON CONFLICT (replica_id) DO UPDATE SET moc = EXCLUDED.moc, sky_fraction = EXCLUDED.sky_fraction`,
    [upsert.map((c) => idOf(c.datasetId)), upsert.map((c) => c.moc), upsert.map((c) => fractionOf(c.moc))],
  );
}

async function writeCompute(db: Queryable, siteId: string, changes: SiteChanges): Promise<void> {
  const { remove, upsert } = changes.compute;
  if (remove.length > 0) await db.query('DELETE FROM compute_pools WHERE site_id = $1 AND id = ANY($2::text[])', [siteId, remove]);
  if (upsert.length === 0) return;
  await db.query(
    `INSERT INTO compute_pools (site_id, id, kind, service_id, cores, memory_gb, gpus, free_cores, free_memory_gb, queue_wait_s,
                                max_walltime_s, max_cores_per_job, max_memory_gb_per_job)
     SELECT $1, p.id, p.kind, p."serviceId", p.cores, p."memoryGb", p.gpus, p."freeCores", p."freeMemoryGb", p."queueWaitS",
            p."maxWalltimeS", p."maxCoresPerJob", p."maxMemoryGbPerJob"
     FROM json_to_recordset($2::json) AS p(id text, kind text, "serviceId" text, cores int, "memoryGb" double precision, gpus int,
          "freeCores" int, "freeMemoryGb" double precision, "queueWaitS" double precision, "maxWalltimeS" int,
          "maxCoresPerJob" int, "maxMemoryGbPerJob" double precision)
     ON CONFLICT (site_id, id) DO UPDATE SET kind = EXCLUDED.kind, service_id = EXCLUDED.service_id, cores = EXCLUDED.cores,
       memory_gb = EXCLUDED.memory_gb, gpus = EXCLUDED.gpus, free_cores = EXCLUDED.free_cores, free_memory_gb = EXCLUDED.free_memory_gb,
       queue_wait_s = EXCLUDED.queue_wait_s, max_walltime_s = EXCLUDED.max_walltime_s, max_cores_per_job = EXCLUDED.max_cores_per_job,
       max_memory_gb_per_job = EXCLUDED.max_memory_gb_per_job`,
    [siteId, JSON.stringify(upsert)],
  );
}

async function writeImages(db: Queryable, siteId: string, changes: SiteChanges): Promise<void> {
  const { remove, upsert } = changes.images;
  if (remove.length > 0) await db.query('DELETE FROM images WHERE site_id = $1 AND ref = ANY($2::text[])', [siteId, remove]);
  if (upsert.length === 0) return;
  await db.query(
    `INSERT INTO images (site_id, ref, digest, arch, types, software, compute)
     SELECT $1, m.ref, m.digest, m.arch, m.types, m.software, m.compute
     FROM json_to_recordset($2::json) AS m(ref text, digest text, arch text, types text[], software text[], compute text[])
     ON CONFLICT (site_id, ref) DO UPDATE SET digest = EXCLUDED.digest, arch = EXCLUDED.arch, types = EXCLUDED.types,
       software = EXCLUDED.software, compute = EXCLUDED.compute`,
    [siteId, JSON.stringify(upsert)],
  );
}
