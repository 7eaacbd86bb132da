/**
 * What the facade publishes: every canonical dataset the caller may see, with its canonical
 * columns, as TAP tables (schema = the id's qualifier), beside the local schemas' tables.
 */
import type { Queryable } from '../../registry/store/db.js';
import { canonicalColumnsByDatasets, searchDatasets, type ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import type { LocalColumn, LocalSchema } from './local-schema.js';

/** One column of a published table. */
export interface TapColumn {
  name: string;
  datatype: string;
  arraysize?: string;
  xtype?: string;
  unit?: string;
  ucd?: string;
  description?: string;
  indexed: boolean;
  principal: boolean;
  std: boolean;
}

/** One published table, named as it is written in ADQL. */
export interface TapTable {
  schema: string;
  /** Qualified name, `schema.table`. */
  name: string;
  type: 'table' | 'view';
  description?: string;
  columns: TapColumn[];
  /** Foreign keys from this table (VODataService foreignKey). */
  foreignKeys?: { target: string; columns: { from: string; target: string }[] }[];
}

/** One published schema. */
export interface TapSchemaEntry {
  name: string;
  description?: string;
  tables: TapTable[];
}

// More datasets than any federation holds; the list is read in one statement.
const ALL = 1_000_000;

/** The caller's published schemas: datasets grouped by qualifier (sorted), then the local schemas. */
export async function publishedSchemas(db: Queryable, visibility: ReplicaVisibility, locals: readonly LocalSchema[]): Promise<TapSchemaEntry[]> {
  const datasets = await searchDatasets(db, { visibility, limit: ALL, offset: 0 });
  const columns = await canonicalColumnsByDatasets(db, datasets.map((d) => d.id), visibility);
  const byDataset = new Map<string, TapColumn[]>();
  for (const c of columns) {
    const list = byDataset.get(c.datasetId) ?? [];
    byDataset.set(c.datasetId, list);
    list.push({ ...votableType(c.datatype, c.arraysize), name: c.name, ...(c.xtype ? { xtype: c.xtype } : {}), ...(c.unit ? { unit: c.unit } : {}), ...(c.ucd ? { ucd: c.ucd } : {}), ...(c.description ? { description: c.description } : {}), indexed: c.indexed === true, principal: false, std: false });
  }
  const schemas = new Map<string, TapSchemaEntry>();
  for (const d of datasets) {
    const dot = d.id.lastIndexOf('.');
    const schema = dot > 0 ? d.id.slice(0, dot) : 'default';
    const entry = schemas.get(schema) ?? { name: schema, tables: [] };
    schemas.set(schema, entry);
    entry.tables.push({ schema, name: d.id, type: 'table', ...(d.title || d.description ? { description: d.description ?? d.title ?? undefined } : {}), columns: byDataset.get(d.id) ?? [] });
  }
  const out = [...schemas.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const local of locals) {
    out.push({
      name: local.name,
      description: local.description,
      tables: local.tables({ db, visibility }).map((t) => {
        const name = `${local.name}.${t.name}`;
        const foreignKeys = (local.keys ?? []).filter((k) => k.fromTable === name).map((k) => ({ target: k.targetTable, columns: k.columns }));
        return { schema: local.name, name, type: 'table' as const, description: t.description, columns: t.columns.map(localColumn), ...(foreignKeys.length > 0 ? { foreignKeys } : {}) };
      }),
    });
  }
  return out;
}

function localColumn(c: LocalColumn): TapColumn {
  return {
    name: c.delimited ? `"${c.name}"` : c.name,
    datatype: c.datatype,
    ...(c.datatype === 'char' ? { arraysize: '*' } : {}),
    description: c.description,
    ...(c.ucd ? { ucd: c.ucd } : {}),
    ...(c.unit ? { unit: c.unit } : {}),
    indexed: c.indexed === true,
    principal: c.principal !== false,
    std: true,
  };
}

const VOTABLE_TYPES = new Set(['boolean', 'bit', 'unsignedByte', 'short', 'int', 'long', 'char', 'unicodeChar', 'float', 'double', 'floatComplex', 'doubleComplex']);
const ADQL_TYPES: Record<string, { datatype: string; arraysize?: string; xtype?: string }> = {
  smallint: { datatype: 'short' }, integer: { datatype: 'int' }, int: { datatype: 'int' }, bigint: { datatype: 'long' }, real: { datatype: 'float' },
  double: { datatype: 'double' }, 'double precision': { datatype: 'double' }, char: { datatype: 'char', arraysize: '*' }, varchar: { datatype: 'char', arraysize: '*' },
  text: { datatype: 'char', arraysize: '*' }, boolean: { datatype: 'boolean' }, timestamp: { datatype: 'char', arraysize: '*', xtype: 'timestamp' },
  point: { datatype: 'double', arraysize: '2', xtype: 'point' }, circle: { datatype: 'double', arraysize: '3', xtype: 'circle' }, polygon: { datatype: 'double', arraysize: '*', xtype: 'polygon' },
  binary: { datatype: 'unsignedByte', arraysize: '*' }, varbinary: { datatype: 'unsignedByte', arraysize: '*' }, blob: { datatype: 'unsignedByte', arraysize: '*' }, clob: { datatype: 'char', arraysize: '*' },
};

/** A registry column type (VOTable or ADQL spelling, any case) as a VOTable datatype and arraysize; unknown types are text. */
export function votableType(datatype: string | null, arraysize: string | null): { datatype: string; arraysize?: string; xtype?: string } {
  const t = (datatype ?? '').trim().replace(/^(adql|vot):/i, '');
  if (VOTABLE_TYPES.has(t)) return { datatype: t, ...(arraysize ? { arraysize } : t === 'char' || t === 'unicodeChar' ? { arraysize: '*' } : {}) };
  const known = ADQL_TYPES[t.toLowerCase()];
  if (known) return arraysize && known.datatype !== 'char' && !known.arraysize ? { ...known, arraysize } : known;
  return { datatype: 'char', arraysize: '*' };
}
