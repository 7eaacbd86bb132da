/**
 * The rows the in-memory catalogue reads beyond the planner's snapshot, inside the snapshot's
 * own transaction: each replica's discovery facts with its columns, and the database's own
 * order of site ids (the order SQL lists a dataset's replicas and canonical columns in).
 */
import type { Queryable } from '../db.js';
import type { ReplicaFacts } from './catalogue.js';
import type { ColumnRow } from './rows.js';

/** One column of a replica as discovery shows it (a replica_columns row without its replica). */
export type CatalogueColumn = Omit<ColumnRow, 'replicaId'>;

/** A replica's discovery facts and its columns in their advertised order. */
export interface ReplicaDetail extends ReplicaFacts {
  readonly columns: readonly CatalogueColumn[];
}

/** The database's order of sites and whether its lower() folds ASCII as JavaScript does. */
export interface SiteOrder {
  /** Every site id, in the database's ORDER BY id. */
  ids: string[];
  asciiLower: boolean;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * The facts and columns of every replica at these sites (every site when undefined), in one
 * statement. Columns come as JSON text: replicas of one dataset usually advertise the same
 * columns, so equal texts share one parsed list (`intern`).
 */
export async function replicaDetailsBySites(db: Queryable, siteIds: readonly string[] | undefined, intern: Map<string, readonly CatalogueColumn[]>): Promise<ReplicaDetail[]> {
  const rows = (await db.query<Omit<ReplicaFacts, 'ucds'> & { columns: string }>(
    `SELECT r.site_id AS "siteId", r.dataset_id AS "datasetId", r.local_table AS "table", r.title, r.public, r.groups,
       COALESCE((SELECT json_agg(json_build_object('name', c.name, 'canonical', c.canonical, 'datatype', c.datatype, 'arraysize', c.arraysize,
         'xtype', c.xtype, 'unit', c.unit, 'ucd', c.ucd, 'description', c.description, 'indexed', c.indexed) ORDER BY c.ordinal)
         FROM replica_columns c WHERE c.replica_id = r.id), '[]')::text AS columns
     FROM replicas r WHERE $1::text[] IS NULL OR r.site_id = ANY($1::text[])`, [siteIds === undefined ? null : [...siteIds]])).rows;
  return rows.map((r) => {
    let columns = intern.get(r.columns);
    if (columns === undefined) intern.set(r.columns, (columns = Object.freeze(parseColumns(r.columns))));
    const ucds = [...new Set(columns.flatMap((c) => (c.ucd === null ? [] : [c.ucd])))];
    return { siteId: r.siteId, datasetId: r.datasetId, table: r.table, title: r.title, public: r.public, groups: r.groups, ucds, columns };
  });
}

/** The columns in the JSON text the statement above builds. */
function parseColumns(text: string): CatalogueColumn[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error('replica columns did not arrive as a JSON array');
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return parsed.map((c: unknown) => {
    if (typeof c !== 'object' || c === null) throw new Error('a replica column did not arrive as a JSON object');
    const f = (k: string): unknown => (k in c ? Reflect.get(c, k) : null);
    const name = f('name');
    if (typeof name !== 'string') throw new Error('a replica column arrived without a name');
    const indexed = f('indexed');
    return Object.freeze({
      name, canonical: str(f('canonical')), datatype: str(f('datatype')), arraysize: str(f('arraysize')), xtype: str(f('xtype')),
      unit: str(f('unit')), ucd: str(f('ucd')), description: str(f('description')), indexed: typeof indexed === 'boolean' ? indexed : null,
    });
  });
}

/** The database's order of every site id, and whether lower() there is plain ASCII folding. */
export async function siteOrder(db: Queryable): Promise<SiteOrder> {
  const row = (await db.query<{ ids: string[] | null; lowered: string }>(`SELECT ARRAY(SELECT id FROM sites ORDER BY id) AS ids, lower('${ALPHABET}') AS lowered`)).rows[0];
  return { ids: row.ids ?? [], asciiLower: row.lowered === ALPHABET.toLowerCase() };
}

/** Which of these site ids are sites now (a cheap check of whether a change added or removed a site). */
export async function existingSites(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  return new Set((await db.query<{ id: string }>('SELECT id FROM sites WHERE id = ANY($1::text[])', [[...ids]])).rows.map((r) => r.id));
}
