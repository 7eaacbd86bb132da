/**
 * VOSI tables: VOSITables 1.0/1.1 `tableset` and `table` roots, and the VODataService
 * `tableset` root the ESA Gaia archive serves (with esatapplus:* extension attributes).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ColumnDoc } from '../../../registry/model/capability.js';
import type { Datatype } from '../votable/types.js';
import { NS, isIvoaOrNone, isVoDataServiceNs } from '../xml/namespaces.js';
import { parseXml, parseXmlAsync, wrongRoot, type XmlElement } from '../xml/tree.js';
import { parseXsdBoolean, parseXsdInteger, textOf } from '../xml/values.js';

/** How a column's dataType was declared: TAP (VODataService TAPType), VOTable, or something else. */
export type DataTypeKind = 'tap' | 'votable' | 'other';

/** A column's dataType element as written. */
export interface VosiDataType {
  kind: DataTypeKind;
  /** The type name as written ("VARCHAR", "double", ...). */
  value: string;
  /** xsi:type local name ("TAPType", "VOTableType", legacy "TAP"/"VOTable"). */
  xsiType?: string;
  arraysize?: string;
  /** TAPType size attribute (VARCHAR(n), CHAR(n)). */
  size?: number;
  delim?: string;
  /** extendedType (VODataService) or xtype attribute. */
  xtype?: string;
}

/** A column type in the normalised (VOTable + DALI xtype) vocabulary. */
export interface NormalisedType {
  datatype: Datatype;
  arraysize?: string;
  /** DALI/VOTable xtype: timestamp, point, circle, polygon, region, moc, interval... */
  xtype?: string;
}

/** One column of a table. */
export interface VosiColumn {
  name: string;
  description?: string;
  unit?: string;
  ucd?: string;
  utype?: string;
  dataType?: VosiDataType;
  /** dataType mapped onto the VOTable vocabulary; undefined when the type is unknown. */
  type?: NormalisedType;
  /** flag elements as written (indexed, primary, nullable, or others). */
  flags: string[];
  indexed: boolean;
  primary: boolean;
  nullable: boolean;
  /** The std attribute: the column is defined by a standard (TAP_SCHEMA, ObsCore...). */
  std?: boolean;
}

/** One column pair of a foreign key. */
export interface VosiFkColumn {
  fromColumn: string;
  targetColumn: string;
}

/** A foreign key of a table. */
export interface VosiForeignKey {
  targetTable: string;
  columns: VosiFkColumn[];
  description?: string;
  utype?: string;
}

/** One table. */
export interface VosiTable {
  name: string;
  title?: string;
  description?: string;
  /** type attribute: base_table, view, output. */
  type?: string;
  utype?: string;
  /** VODataService 1.2 nrows, else the ESA esatapplus:size attribute. */
  nrows?: number;
  /** ESA esatapplus:size_bytes: the table's size on disk. */
  sizeBytes?: number;
  /** ESA esatapplus:public. */
  public?: boolean;
  columns: VosiColumn[];
  foreignKeys: VosiForeignKey[];
  /**
   * True when the table came without columns (VOSI tables-1.1 detail=min): fetch
   * `{tablesUrl}/{name}` and read it with parseVosiTable.
   */
  needsDetail: boolean;
}

/** One schema. */
export interface VosiSchema {
  name: string;
  title?: string;
  description?: string;
  utype?: string;
  /** ESA esatapplus:public. */
  public?: boolean;
  tables: VosiTable[];
}

/** A whole tableset. */
export interface VosiTableSet {
  schemas: VosiSchema[];
}

const WHAT_SET = 'VOSI tables document';
const WHAT_TABLE = 'VOSI table document';

function kids(el: XmlElement, local: string): XmlElement[] {
  return el.childrenNamed(local, isIvoaOrNone);
}

function kid(el: XmlElement, local: string): XmlElement | undefined {
  return el.child(local, isIvoaOrNone);
}

function set<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) obj[key] = value;
}

function optAttr(el: XmlElement, name: string, uri = ''): string | undefined {
  const v = el.attr(name, uri)?.trim();
  return v === undefined || v === '' ? undefined : v;
}

// --- datatypes -----------------------------------------------------------------------------

const VOTABLE_TYPES: readonly Datatype[] = [
  'boolean', 'bit', 'unsignedByte', 'short', 'int', 'long', 'char', 'unicodeChar', 'float', 'double', 'floatComplex', 'doubleComplex',
];
const VOTABLE_BY_LOWER = new Map(VOTABLE_TYPES.map((t) => [t.toLowerCase(), t]));

// TAP 1.1 section 4.3 / VODataService TAPType, plus spellings services use in practice.
// `vary` marks types whose size is a maximum (VARCHAR(n) -> "n*").
const TAP_TYPES: Record<string, { datatype: Datatype; arraysize?: string; xtype?: string; sized?: 'fixed' | 'vary' }> = {
  BOOLEAN: { datatype: 'boolean' },
  SMALLINT: { datatype: 'short' },
  INTEGER: { datatype: 'int' },
  INT: { datatype: 'int' },
  BIGINT: { datatype: 'long' },
  REAL: { datatype: 'float' },
  DOUBLE: { datatype: 'double' },
  'DOUBLE PRECISION': { datatype: 'double' },
  FLOAT: { datatype: 'double' },
  TIMESTAMP: { datatype: 'char', arraysize: '*', xtype: 'timestamp' },
  CHAR: { datatype: 'char', sized: 'fixed' },
  VARCHAR: { datatype: 'char', sized: 'vary' },
  UNICODECHAR: { datatype: 'unicodeChar', sized: 'vary' },
  BINARY: { datatype: 'unsignedByte', sized: 'fixed' },
  VARBINARY: { datatype: 'unsignedByte', sized: 'vary' },
  CLOB: { datatype: 'char', arraysize: '*' },
  BLOB: { datatype: 'unsignedByte', arraysize: '*' },
  POINT: { datatype: 'double', arraysize: '2', xtype: 'point' },
  CIRCLE: { datatype: 'double', arraysize: '3', xtype: 'circle' },
  POLYGON: { datatype: 'double', arraysize: '*', xtype: 'polygon' },
  REGION: { datatype: 'char', arraysize: '*', xtype: 'region' },
  INTERVAL: { datatype: 'double', arraysize: '2', xtype: 'interval' },
  MOC: { datatype: 'char', arraysize: '*', xtype: 'moc' },
};

// VODataService 1.0 vs:SimpleDataType names (service parameters, old tablesets).
const SIMPLE_TYPES: Record<string, NormalisedType> = {
  boolean: { datatype: 'boolean' },
  bit: { datatype: 'bit' },
  unsignedbyte: { datatype: 'unsignedByte' },
  short: { datatype: 'short' },
  int: { datatype: 'int' },
  integer: { datatype: 'long' },
  long: { datatype: 'long' },
  char: { datatype: 'char' },
  string: { datatype: 'char', arraysize: '*' },
  unicodechar: { datatype: 'unicodeChar' },
  float: { datatype: 'float' },
  real: { datatype: 'double' },
  double: { datatype: 'double' },
  date: { datatype: 'char', arraysize: '*', xtype: 'timestamp' },
  datetime: { datatype: 'char', arraysize: '*', xtype: 'timestamp' },
};

// TAP 1.0 wrote xtypes as "adql:POINT"; DALI lower-cases them without prefix.
function normaliseXtype(xtype: string): string {
  const bare = xtype.replace(/^adql:/i, '');
  return /^(timestamp|point|circle|polygon|region|moc|interval|shape|multipolygon|uri|json|hms|dms|uuid)$/i.test(bare)
    ? bare.toLowerCase()
    : xtype;
}

function kindOf(xsiLocal: string | undefined, value: string): DataTypeKind {
  if (xsiLocal === 'TAPType' || xsiLocal === 'TAP') return 'tap';
  if (xsiLocal === 'VOTableType' || xsiLocal === 'VOTable') return 'votable';
  if (xsiLocal !== undefined) return 'other';
  // Untyped: VOTable names are lower camel case, TAP names upper case.
  if (VOTABLE_TYPES.includes(value as Datatype)) return 'votable';
  if (TAP_TYPES[value.toUpperCase()] !== undefined && value === value.toUpperCase()) return 'tap';
  return 'other';
}

/** Maps a declared dataType onto the VOTable vocabulary; undefined when the name is unknown. */
export function normaliseDataType(dt: VosiDataType): NormalisedType | undefined {
  let out: NormalisedType | undefined;
  const value = dt.value.trim().replace(/\s+/g, ' ');
  if (dt.kind === 'tap') {
    const t = TAP_TYPES[value.toUpperCase()];
    if (t === undefined) return undefined;
    out = { datatype: t.datatype };
    let arraysize = t.arraysize;
    if (t.sized === 'fixed') arraysize = dt.size !== undefined ? String(dt.size) : '*';
    if (t.sized === 'vary') arraysize = dt.size !== undefined ? `${dt.size}*` : '*';
    if (arraysize !== undefined) out.arraysize = arraysize;
    if (t.xtype !== undefined) out.xtype = t.xtype;
  } else if (dt.kind === 'votable') {
    const datatype = VOTABLE_BY_LOWER.get(value.toLowerCase());
    if (datatype === undefined) return undefined;
    out = { datatype };
  } else {
    const v = VOTABLE_BY_LOWER.get(value.toLowerCase());
    const simple = SIMPLE_TYPES[value.toLowerCase()];
    if (simple !== undefined) out = { ...simple };
    else if (v !== undefined) out = { datatype: v };
    else return undefined;
  }
  // What the service wrote explicitly beats what the type name implies.
  if (dt.arraysize !== undefined) out.arraysize = dt.arraysize;
  if (dt.xtype !== undefined) out.xtype = normaliseXtype(dt.xtype);
  return out;
}

function parseDataType(el: XmlElement): VosiDataType | undefined {
  const value = textOf(el);
  if (value === undefined) return undefined;
  const xsi = el.xsiType;
  const dt: VosiDataType = { kind: kindOf(xsi?.local, value), value };
  set(dt, 'xsiType', xsi?.local);
  set(dt, 'arraysize', optAttr(el, 'arraysize'));
  set(dt, 'size', parseXsdInteger(optAttr(el, 'size')));
  set(dt, 'delim', el.attr('delim'));
  set(dt, 'xtype', optAttr(el, 'extendedType') ?? optAttr(el, 'xtype'));
  return dt;
}

// --- structure -----------------------------------------------------------------------------

function parseColumn(el: XmlElement): VosiColumn {
  const flags = kids(el, 'flag')
    .map(textOf)
    .filter((f): f is string => f !== undefined);
  const lower = flags.map((f) => f.toLowerCase());
  const col: VosiColumn = {
    name: textOf(kid(el, 'name')) ?? '',
    flags,
    indexed: lower.includes('indexed'),
    primary: lower.includes('primary'),
    nullable: lower.includes('nullable'),
  };
  set(col, 'description', textOf(kid(el, 'description')));
  set(col, 'unit', textOf(kid(el, 'unit')));
  set(col, 'ucd', textOf(kid(el, 'ucd')));
  set(col, 'utype', textOf(kid(el, 'utype')));
  const dtEl = kid(el, 'dataType');
  const dt = dtEl === undefined ? undefined : parseDataType(dtEl);
  if (dt !== undefined) {
    // VODataService 1.2 may carry the xtype as its own element instead of an attribute.
    const xtypeEl = textOf(kid(el, 'xtype'));
    if (dt.xtype === undefined && xtypeEl !== undefined) dt.xtype = xtypeEl;
    col.dataType = dt;
    set(col, 'type', normaliseDataType(dt));
  }
  set(col, 'std', parseXsdBoolean(el.attr('std')));
  return col;
}

function parseForeignKey(el: XmlElement): VosiForeignKey {
  const fk: VosiForeignKey = {
    targetTable: textOf(kid(el, 'targetTable')) ?? '',
    columns: kids(el, 'fkColumn').map((c) => ({
      fromColumn: textOf(kid(c, 'fromColumn')) ?? '',
      targetColumn: textOf(kid(c, 'targetColumn')) ?? '',
    })),
  };
  set(fk, 'description', textOf(kid(el, 'description')));
  set(fk, 'utype', textOf(kid(el, 'utype')));
  return fk;
}

function parseTable(el: XmlElement): VosiTable {
  const columns = kids(el, 'column').map(parseColumn);
  const table: VosiTable = {
    name: textOf(kid(el, 'name')) ?? '',
    columns,
    foreignKeys: kids(el, 'foreignKey').map(parseForeignKey),
    needsDetail: columns.length === 0,
  };
  set(table, 'title', textOf(kid(el, 'title')));
  set(table, 'description', textOf(kid(el, 'description')));
  set(table, 'type', optAttr(el, 'type'));
  set(table, 'utype', textOf(kid(el, 'utype')));
  set(table, 'nrows', parseXsdInteger(textOf(kid(el, 'nrows'))) ?? parseXsdInteger(optAttr(el, 'size', NS.esaTapPlus)));
  set(table, 'sizeBytes', parseXsdInteger(optAttr(el, 'size_bytes', NS.esaTapPlus)));
  set(table, 'public', parseXsdBoolean(el.attr('public', NS.esaTapPlus)));
  return table;
}

function parseSchema(el: XmlElement, tables: VosiTable[] = kids(el, 'table').map(parseTable)): VosiSchema {
  const schema: VosiSchema = { name: textOf(kid(el, 'name')) ?? '', tables };
  set(schema, 'title', textOf(kid(el, 'title')));
  set(schema, 'description', textOf(kid(el, 'description')));
  set(schema, 'utype', textOf(kid(el, 'utype')));
  set(schema, 'public', parseXsdBoolean(el.attr('public', NS.esaTapPlus)));
  return schema;
}

function isTablesRootNs(uri: string): boolean {
  return uri === NS.vosiTables || isVoDataServiceNs(uri) || uri === '';
}

/**
 * Parses a VOSI tables document: `vosi:tableset` (VOSITables 1.0/1.1) or a VODataService
 * `tableset` root (ESA Gaia archive). Tables listed without columns have `needsDetail`.
 */
export function parseVosiTables(input: string | Uint8Array): VosiTableSet {
  return { schemas: kids(tablesetRoot(parseXml(input, WHAT_SET)), 'schema').map((el) => parseSchema(el)) };
}

/** Columns read between two turns of the event loop while a large tableset is interpreted. */
const COLUMNS_PER_SLICE = 5_000;

/**
 * {@link parseVosiTables} for what a site sends at harvest: the XML is parsed and then read in
 * slices (parseXmlAsync, a turn of the event loop every COLUMNS_PER_SLICE columns), so a
 * tableset of a million nodes never holds the broker for its seconds of work.
 */
export async function parseVosiTablesAsync(input: string | Uint8Array): Promise<VosiTableSet> {
  const root = tablesetRoot(await parseXmlAsync(input, WHAT_SET));
  const schemas: VosiSchema[] = [];
  let columns = 0;
  for (const el of kids(root, 'schema')) {
    const tables: VosiTable[] = [];
    for (const t of kids(el, 'table')) {
      const table = parseTable(t);
      tables.push(table);
      columns += table.columns.length + 1;
      if (columns >= COLUMNS_PER_SLICE) {
        columns = 0;
        await yieldToLoop();
      }
    }
    schemas.push(parseSchema(el, tables));
  }
  return { schemas };
}

function tablesetRoot(root: XmlElement): XmlElement {
  if (root.local.toLowerCase() !== 'tableset' || !isTablesRootNs(root.uri)) {
    throw wrongRoot(WHAT_SET, `<tableset> in namespace ${NS.vosiTables} or VODataService`, root);
  }
  return root;
}

/** Parses the single `<vosi:table>` document VOSI tables-1.1 serves at {tablesUrl}/{tableName}. */
export function parseVosiTable(input: string | Uint8Array): VosiTable {
  const root = parseXml(input, WHAT_TABLE);
  if (root.local !== 'table' || !isTablesRootNs(root.uri)) {
    throw wrongRoot(WHAT_TABLE, `<table> in namespace ${NS.vosiTables}`, root);
  }
  return parseTable(root);
}

/** Every table of a tableset, in document order. */
export function allTables(ts: VosiTableSet): VosiTable[] {
  return ts.schemas.flatMap((s) => s.tables);
}

/** Names of the tables listed without columns, to fetch one by one. */
export function tablesNeedingDetail(ts: VosiTableSet): string[] {
  return allTables(ts)
    .filter((t) => t.needsDetail)
    .map((t) => t.name);
}

/** A column as the capability document describes it. */
export function columnDoc(col: VosiColumn): ColumnDoc {
  const doc: ColumnDoc = { name: col.name };
  set(doc, 'datatype', col.type?.datatype);
  set(doc, 'arraysize', col.type?.arraysize);
  set(doc, 'xtype', col.type?.xtype);
  set(doc, 'unit', col.unit);
  set(doc, 'ucd', col.ucd);
  set(doc, 'description', col.description);
  if (col.indexed) doc.indexed = true;
  return doc;
}
