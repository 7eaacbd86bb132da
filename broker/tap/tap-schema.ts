/** TAP_SCHEMA (TAP 1.1 section 4): the service's own description, generated from the registry for each caller. */
import type { Cell } from '../../adapters/ivoa/votable/index.js';
import { publishedSchemas, type TapSchemaEntry } from './catalogue.js';
import type { LocalColumn, LocalKey, LocalSchema, LocalTable, SchemaContext } from './local-schema.js';

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

const flag = (b: boolean) => (b ? 1 : 0);

/** TAP_SCHEMA over `locals` (itself among them): every published table the caller may see. */
export function tapSchema(locals: () => readonly LocalSchema[]): LocalSchema {
  const schema: LocalSchema = {
    name: 'TAP_SCHEMA',
    description: 'the TAP_SCHEMA of the federation: what this service publishes, for this caller',
    keys: KEYS,
    tables(ctx: SchemaContext): LocalTable[] {
      // One registry read per query, shared by the tables it names.
      let published: Promise<TapSchemaEntry[]> | undefined;
      const all = () => (published ??= publishedSchemas(ctx.db, ctx.visibility, locals()));
      const rowsOf = async (table: string): Promise<Cell[][]> => {
        const schemas = await all();
        const keys = locals().flatMap((l) => l.keys ?? []);
        switch (table) {
          case 'schemas':
            return schemas.map((s, i) => [s.name, null, s.description ?? null, i]);
          case 'tables':
            return schemas.flatMap((s) => s.tables.map((t) => [s.name, t.name, t.type, null, t.description ?? null])).map((r, i) => [...r, i]);
          case 'columns':
            return schemas.flatMap((s) => s.tables.flatMap((t) => t.columns.map((c, i): Cell[] => [
              t.name, c.name, null, c.ucd ?? null, c.unit ?? null, c.description ?? null, c.datatype, c.arraysize ?? null, c.xtype ?? null,
              c.arraysize && /^\d+$/.test(c.arraysize) ? Number(c.arraysize) : null, flag(c.principal), flag(c.indexed), flag(c.std), i,
            ])));
          case 'keys':
            return keys.map((k) => [k.id, k.fromTable, k.targetTable, null, k.description ?? null]);
          default:
            return keys.flatMap((k) => k.columns.map((c) => [k.id, c.from, c.target]));
        }
      };
      return Object.keys(COLUMNS).map((name) => ({ name, description: DESCRIPTIONS[name], columns: COLUMNS[name], rows: () => rowsOf(name) }));
    },
  };
  return schema;
}
