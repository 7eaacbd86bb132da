/**
 * Local schemas: tables the facade answers itself (TAP_SCHEMA, RegTAP's `rr`, an upload), each
 * one object implementing LocalSchema in its own file and listed once in ./schemas.ts. A query
 * that reads only local tables runs here, translated to SQL by the project's own translator, in
 * one short transaction. A table over the registry is a SELECT the query reads in place (a
 * common table expression PostgreSQL inlines, so the query's conditions and LIMIT reach the
 * registry's own tables and nothing is copied); a table made in the broker (an upload) is
 * counted first, refused beyond LOCAL_MAX_LOAD_ROWS, and only then copied into a temporary
 * table. No site is asked.
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

/** One table of a local schema: its description and where its rows come from. */
export interface LocalTable {
  /** Unqualified name as written in ADQL (TAP_SCHEMA's are `schemas`, `tables`, …). */
  name: string;
  description: string;
  columns: LocalColumn[];
  source: LocalSource;
}

/**
 * Where a local table's rows come from: a SELECT over the registry, read in place by the query,
 * or rows made in the broker and copied into a temporary table (bounded before they are made).
 */
export type LocalSource =
  | {
    kind: 'sql';
    /**
     * The table as one SELECT giving `columns` in order, each cast to its SQL type. Values of the
     * caller's (visibility, base URL) go through `param`, never into the text.
     */
    select(param: SqlParam): string;
  }
  | {
    kind: 'rows';
    /** How many rows `rows()` gives, read before any is made (an upload: once it is parsed, its bytes already bounded). */
    count(): Promise<number>;
    rows(): Promise<Cell[][]>;
    /** The columns with their types, when they are known only once the rows are read (uploads). */
    typedColumns?: () => Promise<LocalColumn[]>;
  };

/** A bind parameter of a local table's SELECT: `$n` cast to `type` (null is NULL). */
export type SqlParam = (value: string | readonly string[] | null, type: 'text' | 'text[]') => string;

/** Who is reading, and where the registry is. */
export interface SchemaContext {
  db: Queryable;
  /** The replicas the caller may see: protected datasets of other groups are not described to them. */
  visibility: ReplicaVisibility;
  /** This service's own /tap URL as the caller reached it (RegTAP's access URLs point there). */
  baseUrl?: string;
  /** Most rows a table made in the broker may have (LOCAL_MAX_LOAD_ROWS; tests lower it). */
  maxLoadRows?: number;
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

/**
 * Most rows a local table made in the broker (an upload) may have: they are held in memory and
 * copied into a temporary table before the query runs, so a larger one is refused first.
 */
export const LOCAL_MAX_LOAD_ROWS = 200_000;

/** Longest a query of local tables may run. */
const LOCAL_QUERY_TIMEOUT_MS = 30_000;

/** PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout. */
const QUERY_CANCELED = '57014';

/** A query sent with the extended protocol, which runs exactly one statement (node-pg supports queryMode; its types lag). */
type OneStatement = pg.QueryConfig & { queryMode: 'extended' };

/** An SQL identifier, quoted (a double quote inside doubled), whatever the caller named it. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A constant of ours as an SQL string literal (escape-string syntax, so backslashes mean the same whatever the server's settings). */
export function sqlLiteral(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The SQL type of a local column. */
export function sqlType(c: LocalColumn): string {
  return SQL_TYPES[c.datatype] ?? 'text';
}

/** One part of a local table made in SQL: the expression of each column it fills (the others are NULL), from where. */
export interface SqlBranch {
  from?: string;
  cells: Record<string, string>;
}

/**
 * A local table in SQL: the UNION ALL of its branches, every column cast to its type (no branch:
 * no rows). A cell naming no column of the table is a bug, thrown as such.
 */
export function unionSql(table: string, columns: readonly LocalColumn[], branches: readonly SqlBranch[]): string {
  for (const b of branches) {
    const unknown = Object.keys(b.cells).filter((k) => !columns.some((c) => c.name === k));
    if (unknown.length > 0) throw new Error(`${table} has no column ${unknown.join(', ')}`);
  }
  const select = (b: SqlBranch) => `SELECT ${columns.map((c) => `CAST(${b.cells[c.name] ?? 'NULL'} AS ${sqlType(c)}) AS ${quoteIdent(c.name)}`).join(', ')}${b.from ? ` FROM ${b.from}` : ''}`;
  return branches.length > 0 ? branches.map(select).join(' UNION ALL ') : `${select({ cells: {} })} WHERE false`;
}

/** A schema's tables made in SQL: one per entry of `columns`, its SELECT made by `select` when a query reads it. */
export function sqlTables(columns: Record<string, LocalColumn[]>, descriptions: Record<string, string>, select: (table: string, param: SqlParam) => string): LocalTable[] {
  return Object.keys(columns).map((name) => ({ name, description: descriptions[name], columns: columns[name], source: { kind: 'sql', select: (param) => select(name, param) } }));
}

/** One local table a query reads, under the name the translated SQL gives it. */
interface Read {
  name: string;
  ref: string;
  table: LocalTable;
  schema: LocalSchema;
}

/**
 * Run `query`, which reads only local tables, over the caller's rows. An unknown local table is
 * INVALID_ARGUMENT naming it; a table made here with more than LOCAL_MAX_LOAD_ROWS rows, or a
 * query running longer than LOCAL_QUERY_TIMEOUT_MS, is QUERY_TOO_COSTLY; an SQL error (an
 * unknown column) is INVALID_ARGUMENT with the database's message.
 */
export async function runLocalQuery(pool: pg.Pool, schemas: readonly LocalSchema[], query: Query, ctx: SchemaContext, maxrec: number | undefined): Promise<LocalResult> {
  const mapping = new Map<string, TableMapping>();
  const reads: Read[] = [];
  for (const ref of tablesReferenced(query)) {
    if (mapping.has(ref.id)) continue;
    const local = localTableOf(schemas, ref.id);
    const table = local?.schema.tables(ctx).find((t) => t.name.toLowerCase() === local.table);
    if (!local || !table) throw invalidArgument('QUERY', `reads ${ref.id}, which is not a table of this service (see /tap/tables)`);
    const name = `local_${local.schema.name.toLowerCase()}_${table.name.toLowerCase()}`;
    mapping.set(ref.id, { table: name, columnList: table.columns.map((c) => c.name.toLowerCase()) });
    reads.push({ name, ref: `${local.schema.name}.${table.name}`, table, schema: local.schema });
  }
  // Schemas whose tables are read may rewrite the query first and lend it their functions.
  const involved = schemas.filter((s) => reads.some((r) => r.schema === s));
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
  const values: unknown[] = [];
  const param: SqlParam = (value, type) => {
    values.push(value === null || typeof value === 'string' ? value : [...value]);
    return `CAST($${values.length} AS ${type})`;
  };
  // Tables over the registry are read in place: inlined (NOT MATERIALIZED), so the query's own
  // conditions, joins and LIMIT reach the registry's tables and their indexes.
  const inPlace = reads.flatMap((r) => (r.table.source.kind === 'sql' ? [`${quoteIdent(r.name)} AS NOT MATERIALIZED (${r.table.source.select(param)})`] : []));
  const loads = await loadable(reads, ctx.maxLoadRows ?? LOCAL_MAX_LOAD_ROWS);
  const text = `${inPlace.length > 0 ? `WITH ${inPlace.join(',\n')}\n` : ''}SELECT * FROM (${sql}) AS local_query LIMIT ${cap + 1}`;
  return withTransaction(pool, async (client) => {
    for (const { name, columns, rows } of loads) {
      // Column names come from callers (an uploaded table's FIELDs): always quoted, and sent with the
      // extended protocol, which runs one statement only.
      const cols = columns.map((c) => `${quoteIdent(c.name.toLowerCase())} ${sqlType(c)}`).join(', ');
      const create: OneStatement = { text: `CREATE TEMP TABLE ${quoteIdent(name)} (${cols}) ON COMMIT DROP`, queryMode: 'extended' };
      await client.query(create);
      if (rows.length === 0) continue;
      const records = rows.map((r) => Object.fromEntries(columns.map((c, i) => [c.name.toLowerCase(), r[i] === undefined ? null : typeof r[i] === 'bigint' ? String(r[i]) : r[i]])));
      await client.query(`INSERT INTO ${quoteIdent(name)} SELECT * FROM json_populate_recordset(NULL::${quoteIdent(name)}, $1::json)`, [JSON.stringify(records)]);
    }
    let result: pg.QueryResult<unknown[]>;
    try {
      await client.query('SAVEPOINT local_query');
      await client.query(`SET LOCAL statement_timeout = ${LOCAL_QUERY_TIMEOUT_MS}`);
      const select: OneStatement & pg.QueryArrayConfig = { text, values, rowMode: 'array', queryMode: 'extended' };
      result = await client.query<unknown[]>(select);
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT local_query');
      if ((err as { code?: unknown }).code === QUERY_CANCELED) {
        throw new ConstellationError('QUERY_TOO_COSTLY', `QUERY ran longer than ${LOCAL_QUERY_TIMEOUT_MS / 1000} s, this service's limit for a query of its own tables (${reads.map((r) => r.ref).join(', ')}); constrain it further`);
      }
      throw invalidArgument('QUERY', `cannot run: ${(err as Error).message}`);
    }
    const known = new Map([...reads.map((r) => r.table.columns), ...loads.map((l) => l.columns)].flatMap((columns) => columns.map((c) => [c.name.toLowerCase(), c] as const)));
    const fields = result.fields.map((f) => fieldOf(f, known.get(f.name.toLowerCase())));
    let rows = result.rows.map((r) => r.map((v, i) => cellOf(v, fields[i].datatype)));
    const overflow = rows.length > cap;
    if (overflow) rows = rows.slice(0, cap);
    // Temporary tables go with the transaction.
    return { fields, rows, overflow };
  });
}

/**
 * The rows of the tables made in the broker, each counted first: one with more than `limit`
 * rows is QUERY_TOO_COSTLY, naming it and the limit, before any of its rows is made.
 */
async function loadable(reads: readonly Read[], limit: number): Promise<{ name: string; columns: LocalColumn[]; rows: Cell[][] }[]> {
  const out: { name: string; columns: LocalColumn[]; rows: Cell[][] }[] = [];
  for (const r of reads) {
    const source = r.table.source;
    if (source.kind !== 'rows') continue;
    const n = await source.count();
    if (n > limit) {
      throw new ConstellationError('QUERY_TOO_COSTLY', `QUERY reads ${r.ref}, which has ${n} rows; a table this service builds in memory for a query may have at most ${limit}`);
    }
    out.push({ name: r.name, columns: source.typedColumns ? await source.typedColumns() : r.table.columns, rows: await source.rows() });
  }
  return out;
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
