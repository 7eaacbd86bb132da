/**
 * TAP_SCHEMA (TAP 1.1 section 4): the service's own description for each caller, as catalogue.ts's
 * publishedSchemas gives it (and /tap/tables shows it), each table one SELECT over the registry
 * that a query reads in place.
 */
import { votableType } from './catalogue.js';
import { columnNameInAdql, sqlLiteral, sqlTables, unionSql, type LocalColumn, type LocalKey, type LocalSchema, type LocalTable, type SchemaContext, type SqlBranch } from './local-schema.js';

const text = (name: string, description: string, extra: Partial<LocalColumn> = {}): LocalColumn => ({ name, datatype: 'char', description, ...extra });
const int = (name: string, description: string, extra: Partial<LocalColumn> = {}): LocalColumn => ({ name, datatype: 'int', description, ...extra });

const COLUMNS: Record<string, LocalColumn[]> = {
  schemas: [
    text('schema_name', 'schema name, as written in ADQL', { indexed: true }),
    text('utype', 'lists the utypes of schemas'),
    text('description', 'describes schemas'),
    int('schema_index', 'recommended sort order when listing schemas'),
  ],
  tables: [
    text('schema_name', 'the schema name from TAP_SCHEMA.schemas'),
    text('table_name', 'the table name, as written in ADQL (qualified)', { indexed: true }),
    text('table_type', 'one of: table, view'),
    text('utype', 'lists the utype of tables'),
    text('description', 'describes tables'),
    int('table_index', 'recommended sort order when listing tables'),
  ],
  columns: [
    text('table_name', 'the table this column belongs to', { indexed: true }),
    text('column_name', 'the column name, as written in ADQL'),
    text('utype', 'lists the utypes of columns'),
    text('ucd', 'lists the UCDs of columns'),
    text('unit', 'lists the unit used for column values'),
    text('description', 'describes the columns'),
    text('datatype', 'lists the VOTable datatype of columns'),
    text('arraysize', 'lists the size of variable-length columns'),
    text('xtype', 'a DALI or custom extended type annotation'),
    int('size', 'deprecated: use arraysize', { delimited: true }),
    int('principal', 'a principal column; 1 means true, 0 means false'),
    int('indexed', 'an indexed column; 1 means true, 0 means false'),
    int('std', 'a standard column; 1 means true, 0 means false'),
    int('column_index', 'recommended sort order when listing columns'),
  ],
  keys: [
    text('key_id', 'unique key to join to TAP_SCHEMA.key_columns'),
    text('from_table', 'the table with the foreign key'),
    text('target_table', 'the table with the primary key'),
    text('utype', 'lists the utype of keys'),
    text('description', 'describes keys'),
  ],
  key_columns: [
    text('key_id', 'key to join to TAP_SCHEMA.keys'),
    text('from_column', 'column in the from_table'),
    text('target_column', 'column in the target_table'),
  ],
};

const DESCRIPTIONS: Record<string, string> = {
  schemas: 'the schemas of this service: each canonical dataset qualifier, and TAP_SCHEMA',
  tables: 'the tables of this service: the canonical datasets of the federation the caller may see',
  columns: 'the canonical columns of every table',
  keys: 'foreign keys between tables of this service',
  key_columns: 'the columns of each foreign key',
};

const KEYS: LocalKey[] = [
  { id: 'tables_schema', fromTable: 'TAP_SCHEMA.tables', targetTable: 'TAP_SCHEMA.schemas', columns: [{ from: 'schema_name', target: 'schema_name' }] },
  { id: 'columns_table', fromTable: 'TAP_SCHEMA.columns', targetTable: 'TAP_SCHEMA.tables', columns: [{ from: 'table_name', target: 'table_name' }] },
  { id: 'keys_from', fromTable: 'TAP_SCHEMA.keys', targetTable: 'TAP_SCHEMA.tables', columns: [{ from: 'from_table', target: 'table_name' }] },
  { id: 'keys_target', fromTable: 'TAP_SCHEMA.keys', targetTable: 'TAP_SCHEMA.tables', columns: [{ from: 'target_table', target: 'table_name' }] },
  { id: 'key_columns_key', fromTable: 'TAP_SCHEMA.key_columns', targetTable: 'TAP_SCHEMA.keys', columns: [{ from: 'key_id', target: 'key_id' }] },
];

// A column type as catalogue.ts's votableType maps it, in SQL: votableType itself is asked, for
// each type name the registry spells, what it gives with and without an arraysize (VOTable
// names match exactly; ADQL names in any case; anything else is text).
const VOTABLE_NAMES = ['boolean', 'bit', 'unsignedByte', 'short', 'int', 'long', 'char', 'unicodeChar', 'float', 'double', 'floatComplex', 'doubleComplex'];
const ADQL_NAMES = ['smallint', 'integer', 'int', 'bigint', 'real', 'double', 'double precision', 'char', 'varchar', 'text', 'boolean', 'timestamp', 'point', 'circle', 'polygon', 'binary', 'varbinary', 'blob', 'clob'];
const PROBE = '\u0001';

/** The three CASE expressions (datatype, arraysize, xtype) for the normalised type name `t` and the column's arraysize `a`. */
export function votableTypeSql(t: string, a: string): { datatype: string; arraysize: string; xtype: string } {
  const whens = [
    ...VOTABLE_NAMES.map((n) => ({ test: `${t} = ${sqlLiteral(n)}`, bare: votableType(n, null), given: votableType(n, PROBE) })),
    // Upper case is never a VOTable name: votableType answers as for an ADQL type.
    ...ADQL_NAMES.map((n) => ({ test: `lower(${t}) = ${sqlLiteral(n)}`, bare: votableType(n.toUpperCase(), null), given: votableType(n.toUpperCase(), PROBE) })),
  ];
  const otherwise = votableType(null, null);
  const value = (v: string | undefined) => (v === undefined ? 'NULL' : sqlLiteral(v));
  const arraysize = (w: (typeof whens)[number]) => (w.given.arraysize === PROBE ? `COALESCE(NULLIF(${a}, ''), ${value(w.bare.arraysize)})` : value(w.bare.arraysize));
  const build = (pick: (w: (typeof whens)[number]) => string, other: string) => `CASE ${whens.map((w) => `WHEN ${w.test} THEN ${pick(w)}`).join(' ')} ELSE ${other} END`;
  return {
    datatype: build((w) => value(w.bare.datatype), value(otherwise.datatype)),
    arraysize: build(arraysize, value(otherwise.arraysize)),
    xtype: build((w) => value(w.bare.xtype), value(otherwise.xtype)),
  };
}

/** A registry column's datatype as votableType reads it (trimmed, without an adql: or vot: prefix), for votableTypeSql. */
export const normalisedTypeSql = (datatype: string) => `regexp_replace(regexp_replace(COALESCE(${datatype}, ''), E'^\\\\s+|\\\\s+$', '', 'g'), '^(adql|vot):', '', 'i')`;

const lit = sqlLiteral;
const litOrNull = (v: string | undefined | null) => (v === undefined || v === null ? 'NULL' : lit(v));

/** The caller's canonical datasets (every one for 'all', as searchDatasets lists them), with their schema: the id before its last dot. */
const datasetsSql = (visible: string) => `SELECT d.id, d.title, d.description,
    CASE WHEN d.id ~ '^.+[.]' THEN regexp_replace(d.id, '[.][^.]*$', '') ELSE 'default' END AS schema_name
  FROM datasets d
  WHERE ${visible} IS NULL OR EXISTS (SELECT 1 FROM replicas r WHERE r.dataset_id = d.id AND (r.public OR r.groups && ${visible}))`;

/**
 * The canonical columns of the caller's datasets, as canonicalColumnsByDatasets reads them: one
 * per canonical name, described by the first replica (by site id) that has it, in that replica's
 * order, numbered within the table.
 */
const columnsSql = (visible: string) => `SELECT dataset_id, name, c.ucd, c.unit, c.description, c.datatype, c.arraysize, c.xtype, c.indexed,
    row_number() OVER (PARTITION BY dataset_id ORDER BY site_id, ordinal) - 1 AS column_index
  FROM (
    SELECT DISTINCT ON (r.dataset_id, COALESCE(c.canonical, lower(c.name))) r.dataset_id, r.site_id, c.ordinal, COALESCE(c.canonical, lower(c.name)) AS name,
      c.ucd, c.unit, c.description, c.datatype, c.arraysize, c.xtype, c.indexed
    FROM replicas r JOIN replica_columns c ON c.replica_id = r.id
    WHERE ${visible} IS NULL OR r.public OR r.groups && ${visible}
    ORDER BY r.dataset_id, COALESCE(c.canonical, lower(c.name)), r.site_id
  ) c`;

/** One TAP_SCHEMA table for one caller, in SQL: the datasets they may see first (in catalogue.ts's order), then the local schemas'. */
function tapSchemaSql(table: string, locals: readonly LocalSchema[], ctx: SchemaContext, visibleParam: () => string): string {
  const union = (branches: SqlBranch[]) => unionSql(`TAP_SCHEMA.${table}`, COLUMNS[table], branches);
  // The caller's groups as a bind parameter, made only by the tables that read the registry.
  let param: string | undefined;
  const visible = () => (param ??= visibleParam());
  const datasets = () => `(${datasetsSql(visible())}) d`;
  const localTables = locals.flatMap((l) => l.tables(ctx).map((t) => ({ schema: l, table: t, name: `${l.name}.${t.name}` })));
  const keys = locals.flatMap((l) => l.keys ?? []);
  const empty = (v: string) => `NULLIF(${v}, '')`;
  switch (table) {
    case 'schemas': {
      const count = `(SELECT count(DISTINCT schema_name) FROM ${datasets()})`;
      return union([
        { from: `(SELECT DISTINCT schema_name FROM ${datasets()}) d`, cells: { schema_name: 'd.schema_name', schema_index: 'dense_rank() OVER (ORDER BY d.schema_name COLLATE "C") - 1' } },
        ...locals.map((l, i): SqlBranch => ({ cells: { schema_name: lit(l.name), description: lit(l.description), schema_index: `${count} + ${i}` } })),
      ]);
    }
    case 'tables': {
      const count = `(SELECT count(*) FROM ${datasets()})`;
      return union([
        { from: datasets(), cells: { schema_name: 'd.schema_name', table_name: 'd.id', table_type: lit('table'),
          description: `CASE WHEN ${empty('d.title')} IS NOT NULL OR ${empty('d.description')} IS NOT NULL THEN COALESCE(d.description, d.title) END`,
          table_index: 'row_number() OVER (ORDER BY d.schema_name COLLATE "C", d.id COLLATE "C") - 1' } },
        ...localTables.map((t, i): SqlBranch => ({ cells: { schema_name: lit(t.schema.name), table_name: lit(t.name), table_type: lit('table'), description: lit(t.table.description), table_index: `${count} + ${i}` } })),
      ]);
    }
    case 'columns': {
      const type = votableTypeSql('vt.t', 'c.arraysize');
      const arraysize = type.arraysize;
      return union([
        { from: `(${columnsSql(visible())}) c CROSS JOIN LATERAL (SELECT ${normalisedTypeSql('c.datatype')} AS t) vt`, cells: {
          table_name: 'c.dataset_id', column_name: 'c.name', ucd: empty('c.ucd'), unit: empty('c.unit'), description: empty('c.description'), datatype: type.datatype, arraysize,
          xtype: `COALESCE(${empty('c.xtype')}, ${type.xtype})`, size: `CASE WHEN ${arraysize} ~ '^[0-9]+$' THEN CAST(${arraysize} AS integer) END`,
          principal: '0', indexed: 'CASE WHEN c.indexed THEN 1 ELSE 0 END', std: '0', column_index: 'c.column_index' } },
        ...localTables.flatMap((t) => t.table.columns.map((c, i): SqlBranch => ({ cells: {
          table_name: lit(t.name), column_name: lit(columnNameInAdql(c)), ucd: litOrNull(c.ucd || undefined), unit: litOrNull(c.unit || undefined), description: lit(c.description),
          datatype: lit(c.datatype), arraysize: c.datatype === 'char' ? lit('*') : 'NULL', principal: String(flag(c.principal !== false)), indexed: String(flag(c.indexed === true)), std: '1', column_index: String(i),
        } }))),
      ]);
    }
    case 'keys':
      return union(keys.map((k) => ({ cells: { key_id: lit(k.id), from_table: lit(k.fromTable), target_table: lit(k.targetTable), description: litOrNull(k.description) } })));
    default:
      return union(keys.flatMap((k) => k.columns.map((c) => ({ cells: { key_id: lit(k.id), from_column: lit(c.from), target_column: lit(c.target) } }))));
  }
}

const flag = (b: boolean) => (b ? 1 : 0);

/** TAP_SCHEMA over `locals` (itself among them): every published table the caller may see, read in place from the registry. */
export function tapSchema(locals: () => readonly LocalSchema[]): LocalSchema {
  const schema: LocalSchema = {
    name: 'TAP_SCHEMA',
    description: 'the TAP_SCHEMA of the federation: what this service publishes, for this caller',
    keys: KEYS,
    tables(ctx: SchemaContext): LocalTable[] {
      const visible = ctx.visibility === 'all' ? null : ctx.visibility;
      return sqlTables(COLUMNS, DESCRIPTIONS, (name, param) => tapSchemaSql(name, locals(), ctx, () => param(visible, 'text[]')));
    },
  };
  return schema;
}
