/**
 * The VOTable data model as the reader reports it and the writer accepts it.
 *
 * Value representation (identical for TABLEDATA, BINARY and BINARY2):
 *   boolean                      → boolean | null
 *   bit                          → boolean (arrays: boolean[])
 *   unsignedByte, short, int     → number | null
 *   long                         → bigint | null   (always bigint, even when small: Gaia source_id
 *                                                   exceeds 2^53, and one type per column is easier
 *                                                   to consume than "number when safe")
 *   float, double                → number | null   (NaN is read as null; float is rounded to float32)
 *   floatComplex, doubleComplex  → [re, im] | null (either part NaN → null)
 *   char, unicodeChar            → string | null   (2-D and higher arraysize → string[]: the first
 *                                                   dimension is the string length)
 * Other arrays are flat JS arrays in stream order (first dimension varies fastest, as in FITS)
 * whose elements may be null (integer VALUES null sentinel, NaN, boolean '?'); the shape is in
 * `FieldMeta.shape`.
 */

/** The twelve VOTable primitive datatypes. */
export type Datatype =
  | 'boolean'
  | 'bit'
  | 'unsignedByte'
  | 'short'
  | 'int'
  | 'long'
  | 'char'
  | 'unicodeChar'
  | 'float'
  | 'double'
  | 'floatComplex'
  | 'doubleComplex';

/** A parsed `arraysize`: fixed dimensions, then an optional variable last dimension. */
export interface ArrayShape {
  /** Fixed dimensions, first varying fastest; excludes the variable last dimension. */
  dims: number[];
  /** True when the last dimension is variable ("*", "10*", "3x*"). */
  variable: boolean;
  /** Upper bound of the variable dimension ("10*" → 10), null when unbounded or not variable. */
  maxLast: number | null;
}

/** One complex number: real and imaginary part. */
export type Complex = [number, number];

/** A scalar cell value. */
export type Scalar = boolean | number | bigint | string | Complex;

/** One table cell: a scalar, an array (flat, elements may be null), or null. */
export type Cell = Scalar | (Scalar | null)[] | null;

/** One table row, one cell per FIELD in FIELD order. */
export type Row = Cell[];

/** A LINK element. */
export interface LinkMeta {
  ID?: string;
  contentRole?: string;
  contentType?: string;
  title?: string;
  value?: string;
  href?: string;
  action?: string;
}

/** An OPTION of a VALUES element (options may nest). */
export interface OptionMeta {
  name?: string;
  value: string;
  options?: OptionMeta[];
}

/** A VALUES element: the null sentinel and the declared domain. */
export interface ValuesMeta {
  ID?: string;
  /** "legal" or "actual". */
  type?: string;
  /** The magic value meaning "no data", as written (a TABLEDATA literal). */
  null?: string;
  ref?: string;
  min?: { value: string; inclusive: boolean };
  max?: { value: string; inclusive: boolean };
  options?: OptionMeta[];
}

/** The attributes and children shared by FIELD and PARAM. */
export interface FieldMeta {
  /** The `name` attribute, else the `ID` (some services write only IDs), else "col<n>". */
  name: string;
  ID?: string;
  datatype: Datatype;
  /** The `arraysize` attribute as written. */
  arraysize?: string;
  /** `arraysize` parsed; null for a scalar. */
  shape: ArrayShape | null;
  width?: number;
  precision?: string;
  unit?: string;
  ucd?: string;
  utype?: string;
  xtype?: string;
  ref?: string;
  description?: string;
  values?: ValuesMeta;
  links?: LinkMeta[];
}

/** A PARAM: a FIELD with one constant value. */
export interface ParamMeta extends FieldMeta {
  /** The `value` attribute as written. */
  rawValue: string;
  /** `rawValue` decoded like a TABLEDATA cell; null when empty or not decodable. */
  value: Cell;
}

/** Where an INFO element sat. */
export type InfoParent = 'VOTABLE' | 'RESOURCE' | 'TABLE';

/** An INFO element. */
export interface InfoMeta {
  name: string;
  value: string;
  ID?: string;
  ucd?: string;
  utype?: string;
  ref?: string;
  unit?: string;
  xtype?: string;
  /** The element's text content, trimmed (QUERY_STATUS=ERROR puts the message here). */
  content: string;
  parent: InfoParent;
}

/** A GROUP: references to FIELDs and PARAMs, its own PARAMs, and nested GROUPs. */
export interface GroupMeta {
  ID?: string;
  name?: string;
  ucd?: string;
  utype?: string;
  ref?: string;
  description?: string;
  params: ParamMeta[];
  fieldRefs: string[];
  paramRefs: string[];
  groups: GroupMeta[];
}

/** A RESOURCE element, as far as it has been read. */
export interface ResourceMeta {
  ID?: string;
  name?: string;
  /** "results" or "meta". */
  type?: string;
  utype?: string;
  description?: string;
  params: ParamMeta[];
  infos: InfoMeta[];
  groups: GroupMeta[];
  links: LinkMeta[];
  /** Number of TABLEs directly inside. */
  tableCount: number;
  /** Nesting depth: 0 for a RESOURCE directly under VOTABLE. */
  depth: number;
}

/** How a table's rows are serialised. */
export type Serialization = 'TABLEDATA' | 'BINARY' | 'BINARY2';

/** Everything known about a TABLE when its rows start. */
export interface TableMeta {
  /** 0-based position of this TABLE in the document. */
  index: number;
  ID?: string;
  name?: string;
  ucd?: string;
  utype?: string;
  ref?: string;
  /** The `nrows` attribute, when given (a hint, not a promise). */
  nrows?: number;
  description?: string;
  fields: FieldMeta[];
  params: ParamMeta[];
  groups: GroupMeta[];
  links: LinkMeta[];
  /** INFOs inside this TABLE before its DATA. */
  infos: InfoMeta[];
  /** null when the TABLE has no DATA. */
  serialization: Serialization | null;
  /** The enclosing RESOURCE as read so far (its PARAMs and INFOs before this TABLE). */
  resource: ResourceMeta;
  /** The VOTABLE `version` attribute ("1.0" … "1.5"), when given. */
  version?: string;
}

/** QUERY_STATUS values defined by DALI. */
export type QueryStatus = 'OK' | 'OVERFLOW' | 'ERROR';

/**
 * What `readVOTable` yields, in document order:
 *   info*  … table → rows* … resource … end
 * `info` for every INFO as it closes; `table` once a TABLE's FIELDs are known (before its
 * first row; also for a TABLE without DATA); `rows` in batches of at most `batchSize`;
 * `resource` when a RESOURCE closes; `end` once, after the root element closes. With
 * ReadOptions.text, `text` events take the place of `rows`.
 * A QUERY_STATUS=ERROR INFO makes the iterator throw instead (see reader.ts).
 */
export type VOTableEvent =
  | { type: 'info'; info: InfoMeta }
  | { type: 'table'; table: TableMeta }
  | { type: 'rows'; table: number; rows: Row[] }
  /** Instead of `rows` when ReadOptions.text is set: the rows written in that format (no header). */
  | { type: 'text'; table: number; chunk: Uint8Array }
  | { type: 'resource'; resource: ResourceMeta }
  | {
      type: 'end';
      /** The last QUERY_STATUS seen, OVERFLOW if any said so; null when none was given. */
      status: QueryStatus | null;
      /** True when a QUERY_STATUS=OVERFLOW INFO appeared anywhere (DALI truncation). */
      overflow: boolean;
      /** Every INFO in the document. */
      infos: InfoMeta[];
      /** PARAMs directly under VOTABLE (or DEFINITIONS in VOTable 1.0). */
      params: ParamMeta[];
      tableCount: number;
      rowCount: number;
      version?: string;
    };

/** Options of `readVOTable`. */
export interface ReadOptions {
  /** Rows per `rows` event (default 1000). A batch is also flushed at each input chunk's end. */
  batchSize?: number;
  /** What an undecodable cell ("abc" in an int column) does: throw (default) or become null. */
  invalidValues?: 'error' | 'null';
  /** Largest single cell accepted (default 64 MiB; bytes in BINARY, characters in TABLEDATA): bounds memory on hostile input. */
  maxCellBytes?: number;
  /**
   * Deliver rows as text in this format (`text` events, TextTableWriter's rows) instead of
   * `rows` events. BINARY and BINARY2 rows are then written straight from their bytes, with no
   * Row arrays made.
   */
  text?: 'csv' | 'tsv' | 'json';
  /**
   * In text mode, write only the rows of every `every`-th input piece starting at `phase` (the
   * rows a piece completes, counting from 0; the rows completed at the end count as piece N, N
   * pieces having been read). The others are read, checked for their framing and counted, not
   * written: several readers given the same pieces share one table's writing between them.
   */
  textShare?: { every: number; phase: number };
}
