/**
 * Local schemas: tables the facade answers itself (TAP_SCHEMA now, RegTAP's `rr` later), each
 * one object implementing LocalSchema in its own file and listed once in ./schemas.ts. A query
 * that reads only local tables runs here: the caller's rows of each table it names are loaded
 * into temporary tables of one short transaction and the ADQL, translated to SQL by the
 * project's own translator, runs over them. No site is asked.
 */
import type pg from 'pg';
import { identifierKey, rewriteTables, tablesReferenced, toPostgres, type Query, type TableMapping, type ToPostgresOptions } from '../../adapters/ivoa/adql/index.js';
import type { Cell, Datatype, Row, WritableField } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import { withTransaction } from '../../registry/store/db.js';
import type { Queryable } from '../../registry/store/db.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';

/** One column of a local table, as TAP_SCHEMA and VOSI describe it. */
export interface LocalColumn {
  name: string;
  /** VOTable datatype; char columns are variable-length strings. */
  datatype: 'char' | 'int' | 'long' | 'short' | 'double' | 'float' | 'boolean';
  description: string;
  ucd?: string;
  unit?: string;
  /** DALI extended type (timestamp, point…) of a char column. */
  xtype?: string;
  /** Written in double quotes in ADQL (a reserved word such as "size"). */
  delimited?: boolean;
  principal?: boolean;
  indexed?: boolean;
}

/** A foreign key between two local tables (TAP_SCHEMA.keys). */
export interface LocalKey {
  id: string;
  fromTable: string;
  targetTable: string;
  columns: { from: string; target: string }[];
  description?: string;
}

/** One table of a local schema: its description and the caller's rows (one cell per column). */
export interface LocalTable {
  /** Unqualified name as written in ADQL (TAP_SCHEMA's are `schemas`, `tables`, …). */
  name: string;
  description: string;
  columns: LocalColumn[];
  /** The columns with their types, when they are known only once the rows are read (uploads). */
  typedColumns?: () => Promise<LocalColumn[]>;
  rows(): Promise<Cell[][]> | Cell[][];
}

/** Who is reading, and where the registry is. */
export interface SchemaContext {
  db: Queryable;
  /** The replicas the caller may see: protected datasets of other groups are not described to them. */
  visibility: ReplicaVisibility;
  /** This service's own /tap URL as the caller reached it (RegTAP's access URLs point there). */
  baseUrl?: string;
}

/** A schema the facade answers itself. */
export interface LocalSchema {
  /** The schema name as written in ADQL (`TAP_SCHEMA`, `rr`); matched case-insensitively. */
  name: string;
  description: string;
  /** The schema's tables for this caller (their rows are read only when a query needs them). */
  tables(ctx: SchemaContext): LocalTable[];
  /** Foreign keys between its tables (TAP_SCHEMA.keys). */
  keys?: LocalKey[];
  /** User-defined functions a query of its tables may call (RegTAP's ivo_*), as the translator takes them. */
  udfs?: ToPostgresOptions['udfs'];
  /** Rewrite a query that reads its tables before translation (RegTAP evaluates MOC constraints here); must not change the tables read. */
  prepare?(query: Query, ctx: SchemaContext): Promise<Query>;
}

const SQL_TYPES: Record<LocalColumn['datatype'], string> = {
  char: 'text', int: 'integer', long: 'bigint', short: 'smallint', double: 'double precision', float: 'real', boolean: 'boolean',
};

/** The local table `ref` names (schema.table, any case), or undefined. */
export function localTableOf(schemas: readonly LocalSchema[], id: string): { schema: LocalSchema; table: string } | undefined {
  const parts = id.toLowerCase().replace(/"/g, '').split('.');
  if (parts.length !== 2) return undefined;
  const schema = schemas.find((s) => s.name.toLowerCase() === parts[0]);
  return schema ? { schema, table: parts[1] } : undefined;
}

/** The result of a local query: its fields and rows (at most `maxrec`), and whether more rows were cut off. */
export interface LocalResult {
  fields: WritableField[];
  rows: Row[];
  overflow: boolean;
}

/** Most rows a query of local tables answers (held in memory); more is OVERFLOW, whatever MAXREC says. */
export const LOCAL_MAX_ROWS = 100_000;

/** Longest a query of local tables may run. */
const LOCAL_QUERY_TIMEOUT_MS = 30_000;

/** A query sent with the extended protocol, which runs exactly one statement (node-pg supports queryMode; its types lag). */
type OneStatement = pg.QueryConfig & { queryMode: 'extended' };

/** An SQL identifier, quoted (a double quote inside doubled), whatever the caller named it. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Run `query`, which reads only local tables, over the caller's rows. An unknown local table is
 * INVALID_ARGUMENT naming it; an SQL error (an unknown column) is INVALID_ARGUMENT with the
 * database's message.
 */
export async function runLocalQuery(pool: pg.Pool, schemas: readonly LocalSchema[], query: Query, ctx: SchemaContext, maxrec: number | undefined): Promise<LocalResult> {
  const mapping = new Map<string, TableMapping>();
  const load: { temp: string; table: LocalTable; schema: LocalSchema }[] = [];
  for (const ref of tablesReferenced(query)) {
    if (mapping.has(ref.id)) continue;
    const local = localTableOf(schemas, ref.id);
    const table = local?.schema.tables(ctx).find((t) => t.name.toLowerCase() === local.table);
    if (!local || !table) throw invalidArgument('QUERY', `reads ${ref.id}, which is not a table of this service (see /tap/tables)`);
    const temp = `local_${local.schema.name.toLowerCase()}_${table.name.toLowerCase()}`;
    mapping.set(ref.id, { table: temp, columnList: table.columns.map((c) => c.name.toLowerCase()) });
    load.push({ temp, table, schema: local.schema });
  }
  // Schemas whose tables are read may rewrite the query first and lend it their functions.
  const involved = schemas.filter((s) => load.some((l) => l.schema === s));
  for (const s of involved) if (s.prepare) query = await s.prepare(query, ctx);
  const udfs = Object.assign({}, ...involved.map((s) => s.udfs ?? {})) as NonNullable<ToPostgresOptions['udfs']>;
  let sql: string;
  try {
    sql = toPostgres(rewriteTables(query, mapping), { udfs });
  } catch (err) {
    throw new ConstellationError('INVALID_ARGUMENT', `QUERY cannot run here: ${(err as Error).message}`);
  }
  // A local answer is held whole in memory: at most LOCAL_MAX_ROWS rows, more is OVERFLOW.
  const cap = Math.min(maxrec ?? LOCAL_MAX_ROWS, LOCAL_MAX_ROWS);
  const limit = ` LIMIT ${cap + 1}`;
  const loaded = await Promise.all(load.map(async (l) => ({ temp: l.temp, rows: await l.table.rows(), table: { ...l.table, columns: l.table.typedColumns ? await l.table.typedColumns() : l.table.columns } })));
  return withTransaction(pool, async (client) => {
    for (const { temp, table, rows } of loaded) {
      // Column names come from callers (an uploaded table's FIELDs): always quoted, and sent with the
      // extended protocol, which runs one statement only.
      const cols = table.columns.map((c) => `${quoteIdent(c.name.toLowerCase())} ${SQL_TYPES[c.datatype] ?? 'text'}`).join(', ');
      const create: OneStatement = { text: `CREATE TEMP TABLE ${quoteIdent(temp)} (${cols}) ON COMMIT DROP`, queryMode: 'extended' };
      await client.query(create);
      if (rows.length === 0) continue;
      const records = rows.map((r) => Object.fromEntries(table.columns.map((c, i) => [c.name.toLowerCase(), r[i] === undefined ? null : typeof r[i] === 'bigint' ? String(r[i]) : r[i]])));
      await client.query(`INSERT INTO ${quoteIdent(temp)} SELECT * FROM json_populate_recordset(NULL::${quoteIdent(temp)}, $1::json)`, [JSON.stringify(records)]);
    }
    let result: pg.QueryResult<unknown[]>;
    try {
      await client.query('SAVEPOINT local_query');
      await client.query(`SET LOCAL statement_timeout = ${LOCAL_QUERY_TIMEOUT_MS}`);
      const select: OneStatement & pg.QueryArrayConfig = { text: `SELECT * FROM (${sql}) AS local_query${limit}`, rowMode: 'array', queryMode: 'extended' };
      result = await client.query<unknown[]>(select);
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT local_query');
      throw invalidArgument('QUERY', `cannot run: ${(err as Error).message}`);
    }
    const known = new Map(loaded.flatMap(({ table }) => table.columns.map((c) => [c.name.toLowerCase(), c] as const)));
    const fields = result.fields.map((f) => fieldOf(f, known.get(f.name.toLowerCase())));
    let rows = result.rows.map((r) => r.map((v, i) => cellOf(v, fields[i].datatype)));
    const overflow = rows.length > cap;
    if (overflow) rows = rows.slice(0, cap);
    // Temporary tables go with the transaction: this one only read, so it is rolled back.
    return { fields, rows, overflow };
  });
}

/** A result column's VOTable field, from its SQL type, described by the local column of that name when there is one. */
function fieldOf(f: pg.FieldDef, column: LocalColumn | undefined): WritableField {
  const datatype = DATATYPES[f.dataTypeID] ?? 'char';
  const field: WritableField = { name: f.name, datatype, ...(datatype === 'char' ? { arraysize: '*' } : {}) };
  if (column) {
    if (column.ucd) field.ucd = column.ucd;
    if (column.unit) field.unit = column.unit;
    if (column.xtype && datatype === 'char') field.xtype = column.xtype;
    field.description = column.description;
  }
  return field;
}

// PostgreSQL type oids → VOTable datatypes (anything else is written as text).
const DATATYPES: Record<number, Datatype> = { 16: 'boolean', 20: 'long', 21: 'short', 23: 'int', 700: 'float', 701: 'double', 1700: 'double' };

function cellOf(v: unknown, datatype: Datatype): Cell {
  if (v === null || v === undefined) return null;
  if (datatype === 'long') return BigInt(v as number | string);
  if (datatype === 'double' || datatype === 'float') return Number(v);
  if (datatype === 'char') return v instanceof Date ? v.toISOString() : String(v);
  return v as Cell;
}

/** The key of a column name as TAP_SCHEMA writes it (quoted when delimited). */
export function columnNameInAdql(c: LocalColumn): string {
  return c.delimited ? `"${c.name}"` : c.name;
}

export { identifierKey };
