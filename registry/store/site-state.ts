/**
 * One site's advertised rows in the one form publish compares: as a capability document wants
 * them (documentState) and as the database holds them (readSiteState). Both give every optional
 * field its stored default, so equal content compares equal whichever side it came from.
 */
import type { CapabilityDocument } from '../model/capability.js';
import { ConstellationError } from '../model/errors.js';
import type { Queryable } from './db.js';
import type { ColumnState, ComputeState, ImageState, ReplicaState, ServiceState } from './queries/rows.js';

/** A replica with what hangs off it: its columns in order and its coverage. */
export interface ReplicaEntry {
  row: ReplicaState;
  columns: ColumnState[];
  /** Normalised MOC ASCII, or null when the site gave none. */
  moc: string | null;
}

/** A stored replica: an entry with the id its columns and coverage are keyed by. */
export interface StoredReplica extends ReplicaEntry {
  id: number;
}

/** Every row a site advertises, keyed as the tables key them within the site. */
export interface SiteState<R extends ReplicaEntry = ReplicaEntry> {
  services: Map<string, ServiceState>;
  /** By canonical dataset id. */
  replicas: Map<string, R>;
  compute: Map<string, ComputeState>;
  /** By image reference. */
  images: Map<string, ImageState>;
}

/** A site with nothing stored (a first publish). */
export function emptyState(): SiteState<StoredReplica> {
  return { services: new Map(), replicas: new Map(), compute: new Map(), images: new Map() };
}

/**
 * The rows `doc` (already validated) stands for. Keys must be unique and every dataset's service
 * declared, as validation ensures; otherwise rows would vanish silently (a duplicate overwrites
 * its twin, a replica left on a dropped service goes with it), so both are refused here too,
 * naming where.
 */
export function documentState(doc: CapabilityDocument): SiteState {
  const services = keyed(doc.services, (s) => s.id, (i) => `/services/${i}/id`, (s): ServiceState => ({
    id: s.id, type: s.type, url: s.url, standardId: s.standardId ?? null, title: s.title ?? null, upload: s.upload ?? false,
    async: s.async ?? false, maxRec: s.maxRec ?? null, uploadLimitBytes: s.uploadLimitBytes ?? null, languages: s.languages ?? [],
    formats: s.formats ?? [], auth: s.auth ?? [],
  }));
  doc.datasets.forEach((d, i) => {
    if (!services.has(d.service)) throw refused(`/datasets/${i}/service`, 'service-reference', `names service "${d.service}", which this document does not declare`);
  });
  const replicas = keyed(doc.datasets, (d) => d.id, (i) => `/datasets/${i}/id`, (d): ReplicaEntry => ({
    row: {
      datasetId: d.id, serviceId: d.service, table: d.table, title: d.title ?? null, description: d.description ?? null,
      rows: d.rows ?? null, rowBytes: d.rowBytes ?? null, raColumn: d.position?.ra ?? null, decColumn: d.position?.dec ?? null,
      public: d.access.public, groups: d.access.groups ?? [],
    },
    columns: (d.columns ?? []).map((c) => ({
      name: c.name, canonical: c.canonical ?? null, datatype: c.datatype ?? null, arraysize: c.arraysize ?? null, xtype: c.xtype ?? null,
      unit: c.unit ?? null, ucd: c.ucd ?? null, description: c.description ?? null, indexed: c.indexed ?? null,
    })),
    moc: d.coverage ?? null,
  }));
  const compute = keyed(doc.compute, (p) => p.id, (i) => `/compute/${i}/id`, (p): ComputeState => ({
    id: p.id, kind: p.kind, serviceId: p.service ?? null, cores: p.cores, memoryGb: p.memoryGb, gpus: p.gpus ?? 0,
    freeCores: p.freeCores ?? null, freeMemoryGb: p.freeMemoryGb ?? null, queueWaitS: p.queueWaitS ?? null,
    maxWalltimeS: p.maxWalltimeS ?? null, maxCoresPerJob: p.maxCoresPerJob ?? null, maxMemoryGbPerJob: p.maxMemoryGbPerJob ?? null,
  }));
  const images = keyed(doc.images, (m) => m.ref, (i) => `/images/${i}/ref`, (m): ImageState => ({
    ref: m.ref, digest: m.digest ?? null, arch: m.arch ?? null, types: m.types, software: m.software ?? [], compute: m.compute ?? null,
  }));
  return { services, replicas, compute, images };
}

/** `items` by `key`, mapped; INVALID_DOCUMENT naming the second occurrence of a key. */
function keyed<T, V>(items: readonly T[], key: (t: T) => string, path: (i: number) => string, map: (t: T) => V): Map<string, V> {
  const out = new Map<string, V>();
  items.forEach((item, i) => {
    const k = key(item);
    if (out.has(k)) throw refused(path(i), 'unique', `duplicate key "${k}": each may appear once per document`);
    out.set(k, map(item));
  });
  return out;
}

/** INVALID_DOCUMENT for one violation at `path`. */
function refused(path: string, rule: string, message: string): ConstellationError {
  return new ConstellationError('INVALID_DOCUMENT', `capability document rejected: ${path} ${message}`, { violations: [{ path, rule, message }] });
}

/** A replica_columns row beside its replica's (null when the replica has no column). */
interface ColumnFields {
  colOrdinal: number | null;
  colName: string | null;
  colCanonical: string | null;
  colDatatype: string | null;
  colArraysize: string | null;
  colXtype: string | null;
  colUnit: string | null;
  colUcd: string | null;
  colDescription: string | null;
  colIndexed: boolean | null;
}

/**
 * What `siteId` has stored now. Run inside the publishing transaction after the site's row is
 * locked, so nothing changes it until the transaction ends.
 */
export async function readSiteState(db: Queryable, siteId: string): Promise<SiteState<StoredReplica>> {
  const state = emptyState();
  for (const s of (await db.query<ServiceState>(
    `SELECT id, type, url, standard_id AS "standardId", title, upload, async, max_rec AS "maxRec",
       upload_limit_bytes AS "uploadLimitBytes", languages, formats, auth
     FROM services WHERE site_id = $1`, [siteId])).rows) state.services.set(s.id, s);

  // Replicas with their coverage and columns in one statement (one row per column, one for a
  // replica without any). The columns are one walk of the primary key per replica (LATERAL with
  // OFFSET 0: a plain join is planned as a scan of every site's columns while the table has no statistics).
  const byId = new Map<number, StoredReplica>();
  for (const r of (await db.query<ReplicaState & { id: number; moc: string | null } & ColumnFields>(
    `SELECT r.id, r.dataset_id AS "datasetId", r.service_id AS "serviceId", r.local_table AS "table", r.title, r.description, r.rows,
       r.row_bytes AS "rowBytes", r.ra_column AS "raColumn", r.dec_column AS "decColumn", r.public, r.groups, cv.moc,
       c.ordinal AS "colOrdinal", c.name AS "colName", c.canonical AS "colCanonical", c.datatype AS "colDatatype", c.arraysize AS "colArraysize",
       c.xtype AS "colXtype", c.unit AS "colUnit", c.ucd AS "colUcd", c.description AS "colDescription", c.indexed AS "colIndexed"
     FROM replicas r LEFT JOIN coverage cv ON cv.replica_id = r.id
     LEFT JOIN LATERAL (SELECT * FROM replica_columns x WHERE x.replica_id = r.id OFFSET 0) c ON true
     WHERE r.site_id = $1`, [siteId])).rows) {
    const { id, moc, colOrdinal, colName, colCanonical, colDatatype, colArraysize, colXtype, colUnit, colUcd, colDescription, colIndexed, ...row } = r;
    let entry = byId.get(id);
    if (entry === undefined) {
      entry = { id, row, columns: [], moc };
      state.replicas.set(row.datasetId, entry);
      byId.set(id, entry);
    }
    // Placed by ordinal, so each list's index is its ordinal (publish writes them 0..n-1; a gap,
    // which publish cannot leave, reads as a missing column and is written again).
    if (colOrdinal !== null && colName !== null) {
      entry.columns[colOrdinal] = {
        name: colName, canonical: colCanonical, datatype: colDatatype, arraysize: colArraysize, xtype: colXtype, unit: colUnit, ucd: colUcd,
        description: colDescription, indexed: colIndexed,
      };
    }
  }

  for (const p of (await db.query<ComputeState>(
    `SELECT id, kind, service_id AS "serviceId", cores, memory_gb AS "memoryGb", gpus, free_cores AS "freeCores",
       free_memory_gb AS "freeMemoryGb", queue_wait_s AS "queueWaitS", max_walltime_s AS "maxWalltimeS",
       max_cores_per_job AS "maxCoresPerJob", max_memory_gb_per_job AS "maxMemoryGbPerJob"
     FROM compute_pools WHERE site_id = $1`, [siteId])).rows) state.compute.set(p.id, p);
  for (const m of (await db.query<ImageState>(
    'SELECT ref, digest, arch, types, software, compute FROM images WHERE site_id = $1', [siteId])).rows) state.images.set(m.ref, m);
  return state;
}
