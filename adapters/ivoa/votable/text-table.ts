import type { Cell, FieldMeta, Row } from './types.js';
import { isStringArray } from './arraysize.js';
import { ByteSink, SpelledBytes } from './byte-sink.js';
import { doubleText, float32Text } from './real-text.js';

/** The text formats a VOTable's rows are written in. */
export type TextFormat = 'csv' | 'tsv' | 'json';

// What a column's cells are, decided once per table so the row loop is one switch.
const DOUBLE = 0;
const FLOAT = 1;
const INTEGER = 2;
const LONG = 3;
const BOOLEAN = 4;
const STRING = 5;
/** Arrays, complex numbers, arrays of strings: written through `cellText` / `cellJson`. */
const OTHER = 6;

function kindOf(f: FieldMeta): number {
  if (f.datatype === 'char' || f.datatype === 'unicodeChar') return isStringArray(f.shape) ? OTHER : STRING;
  if (f.shape !== null) return OTHER;
  switch (f.datatype) {
    case 'double':
      return DOUBLE;
    case 'float':
      return FLOAT;
    case 'unsignedByte':
    case 'short':
    case 'int':
      return INTEGER;
    case 'long':
      return LONG;
    case 'boolean':
    case 'bit':
      return BOOLEAN;
    default:
      return OTHER;
  }
}

/** True for float and floatComplex: their values are written at float32 precision. */
function isFloat32(f: FieldMeta): boolean {
  return f.datatype === 'float' || f.datatype === 'floatComplex';
}

/** RFC 4180: a field holding a comma, quote, CR or LF (or leading/trailing white space) is quoted, quotes doubled. */
const CSV_QUOTE = /[",\r\n]|^\s|\s$/;
const TSV_CLEAN = /[\t\r\n]/;

/** RFC 4180 quoting of one CSV field. */
export function csvField(text: string): string {
  return CSV_QUOTE.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A TSV field: tabs and line breaks become spaces. */
export function tsvField(text: string): string {
  return TSV_CLEAN.test(text) ? text.replace(/[\t\r\n]/g, ' ') : text;
}

/** A number as text: shortest at its precision; NaN and the infinities as JavaScript spells them. */
function numberText(x: number, float32: boolean): string {
  if (x - x !== 0) return String(x);
  return float32 ? float32Text(x) : doubleText(x);
}

/**
 * A cell as CSV/TSV text: null is empty, arrays (and complex numbers) are space-separated as in
 * VOTable TABLEDATA with null elements empty; `float32` writes reals at float precision.
 */
export function cellText(cell: Cell, float32 = false): string {
  if (cell === null) return '';
  if (typeof cell === 'number') return numberText(cell, float32);
  if (Array.isArray(cell)) return cell.map((v) => (v === null ? '' : cellText(v, float32))).join(' ');
  return String(cell);
}

/** A cell as JSON: long integers keep every digit, NaN and infinities become null, complex numbers are [re, im]. */
export function cellJson(cell: Cell, float32 = false): string {
  if (cell === null) return 'null';
  if (typeof cell === 'bigint') return cell.toString();
  if (typeof cell === 'number') return Number.isFinite(cell) ? numberText(cell, float32) : 'null';
  if (typeof cell === 'boolean') return cell ? 'true' : 'false';
  if (typeof cell === 'string') return JSON.stringify(cell);
  return '[' + cell.map((v) => cellJson(v, float32)).join(',') + ']';
}

/** A double JSON.stringify spells as String() does: finite, and not -0 (which it writes as 0). */
function spelledByJson(x: number): boolean {
  return x - x === 0 && (x !== 0 || 1 / x > 0);
}

/** The batch's spelled doubles when it has none. */
const NO_DOUBLES = new Uint8Array(0);

/** A FIELD as the JSON format's metadata describes it. */
function fieldJson(f: FieldMeta): Record<string, string> {
  const out: Record<string, string> = { name: f.name, datatype: f.datatype };
  if (f.arraysize) out.arraysize = f.arraysize;
  if (f.unit) out.unit = f.unit;
  if (f.ucd) out.ucd = f.ucd;
  if (f.xtype) out.xtype = f.xtype;
  if (f.description) out.description = f.description;
  return out;
}

/**
 * Writes a table's rows as CSV (RFC 4180, CRLF, a header line), TSV (a header line, LF) or JSON
 * (`{"metadata":[…],"data":[[…],…]}`) into byte chunks. Each column's kind is decided once,
 * numbers go straight into the buffer as digits, and a float column is written at float32
 * precision. Rows come as Row arrays (`appendRows`) or, for BINARY/BINARY2, straight from their
 * bytes (binary-text.ts, through the cell methods below).
 */
export class TextTableWriter {
  /** Where the text goes; `take` hands it over. */
  readonly sink = new ByteSink();
  /** The byte between two cells of a row. */
  readonly separator: number;
  readonly json: boolean;
  private readonly kinds: Uint8Array;
  private readonly float32: boolean[];
  private rowsWritten = 0;
  /** The DOUBLE columns, and the batch's doubles gathered for JSON.stringify (reused). */
  private readonly doubles: number[];
  private readonly reals: number[] = [];
  private readonly spelledBytes = new SpelledBytes();

  constructor(
    readonly format: TextFormat,
    private readonly fields: readonly FieldMeta[],
  ) {
    this.kinds = Uint8Array.from(fields.map(kindOf));
    this.float32 = fields.map(isFloat32);
    this.doubles = [...this.kinds.keys()].filter((c) => this.kinds[c] === DOUBLE);
    this.json = format === 'json';
    this.separator = format === 'tsv' ? 9 : 44;
  }

  /** What comes before the rows: the header line, or the JSON document's metadata. */
  head(): Buffer {
    const f = this.fields;
    if (this.format === 'csv') this.sink.text(f.map((x) => csvField(x.name)).join(',') + '\r\n');
    else if (this.format === 'tsv') this.sink.text(f.map((x) => tsvField(x.name)).join('\t') + '\n');
    else this.sink.text(`{"metadata":${JSON.stringify(f.map(fieldJson))},"data":[`);
    return this.sink.take();
  }

  /** What comes after the last row. */
  tail(): Buffer {
    if (this.json) this.sink.ascii('\n]}\n');
    return this.sink.take();
  }

  /** The text written since the last take. */
  take(): Buffer {
    return this.sink.take();
  }

  /** A batch of rows written and taken. */
  rows(rows: readonly Row[]): Buffer {
    this.appendRows(rows);
    return this.sink.take();
  }

  /** Write a batch of rows (one cell per FIELD each, as the reader gives them). */
  appendRows(rows: readonly Row[]): void {
    const sink = this.sink;
    const kinds = this.kinds;
    const n = kinds.length;
    const json = this.json;
    const sep = this.separator;
    // Every double of the batch spelled by one JSON.stringify call: the engine writes them all in
    // one native pass, instead of a string (and a runtime call) per cell; the row loop below
    // copies each one's characters from it, in the same order.
    const reals = this.reals;
    reals.length = 0;
    if (this.doubles.length > 0) {
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        for (const c of this.doubles) {
          const v = row[c];
          if (typeof v === 'number' && spelledByJson(v)) reals.push(v);
        }
      }
    }
    const spelled = reals.length > 0 ? this.spelledBytes.of(JSON.stringify(reals)) : NO_DOUBLES;
    let at = 1;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      this.beginRow();
      for (let c = 0; c < n; c++) {
        if (c > 0) sink.byte(sep);
        const v = row[c];
        if (v === null || v === undefined) {
          if (json) sink.ascii('null');
          continue;
        }
        switch (kinds[c]) {
          case DOUBLE:
            if (typeof v === 'number') {
              if (spelledByJson(v)) at = sink.numberBytes(spelled, at) + 1;
              else this.unusualReal(v);
              continue;
            }
            break;
          case FLOAT:
            if (typeof v === 'number') {
              if (v - v === 0 && v !== 0) sink.float32(v);
              else this.unusualReal(v);
              continue;
            }
            break;
          case INTEGER:
            if (typeof v === 'number') {
              sink.int(v);
              continue;
            }
            break;
          case LONG:
            if (typeof v === 'bigint') {
              sink.ascii(v.toString());
              continue;
            }
            break;
          case BOOLEAN:
            if (typeof v === 'boolean') {
              sink.ascii(v ? 'true' : 'false');
              continue;
            }
            break;
          case STRING:
            if (typeof v === 'string') {
              this.stringCell(v);
              continue;
            }
            break;
        }
        // Arrays, complex numbers, and any cell of an unexpected type: the general path.
        this.otherCell(c, v);
      }
      this.endRow();
    }
  }

  /** Start a row (JSON: its bracket, after a comma from the previous row). */
  /** Rows another writer writes (see ReadOptions.textShare): they count as written, for JSON's separators. */
  skipRows(count: number): void {
    this.rowsWritten += count;
  }

  beginRow(): void {
    if (this.json) this.sink.ascii(this.rowsWritten++ === 0 ? '\n[' : ',\n[');
  }

  /** End a row. */
  endRow(): void {
    if (this.json) this.sink.byte(93);
    else if (this.format === 'csv') this.sink.ascii('\r\n');
    else this.sink.byte(10);
  }

  /** A null cell: nothing in CSV and TSV, null in JSON. */
  nullCell(): void {
    if (this.json) this.sink.ascii('null');
  }

  /** Zero (-0 keeps its sign), NaN and the infinities (JSON has no spelling for them: null). */
  unusualReal(x: number): void {
    if (x === 0) this.sink.ascii(1 / x < 0 ? '-0' : '0');
    else this.sink.ascii(this.json ? 'null' : String(x));
  }

  /** A string cell, quoted (CSV), cleaned (TSV) or a JSON string. */
  stringCell(s: string): void {
    this.sink.text(this.json ? JSON.stringify(s) : this.format === 'csv' ? csvField(s) : tsvField(s));
  }

  /**
   * A string cell whose text is the bytes src[start, …) up to the first NUL or `end`, copied as
   * they are when they are ASCII the format needs no quoting or escaping for; false (nothing
   * written) otherwise, for the caller to decode them and use `stringCell`.
   */
  asciiCell(src: Uint8Array, start: number, end: number): boolean {
    const sink = this.sink;
    if (this.json) {
      sink.byte(34);
      if (sink.bytesToNul(src, start, end, JSON_PLAIN) < 0) {
        sink.unwrite(1);
        return false;
      }
      sink.byte(34);
      return true;
    }
    if (this.format === 'tsv') return sink.bytesToNul(src, start, end, TSV_PLAIN) >= 0;
    // CSV: leading or trailing white space is quoted too.
    if (start < end && CSV_EDGE[src[start]] === 0) return false;
    const stop = sink.bytesToNul(src, start, end, CSV_PLAIN);
    if (stop < 0) return false;
    if (stop > start && CSV_EDGE[src[stop - 1]] === 0) {
      sink.unwrite(stop - start);
      return false;
    }
    return true;
  }

  /** Any other cell (arrays, complex numbers, arrays of strings) of column `c`. */
  otherCell(c: number, v: Cell): void {
    const float32 = this.float32[c];
    if (this.json) this.sink.text(cellJson(v, float32));
    else if (this.format === 'csv') this.sink.text(csvField(cellText(v, float32)));
    else this.sink.text(tsvField(cellText(v, float32)));
  }
}

/** ASCII bytes each format copies as they are in a string (1) or must quote or escape (0); NUL and non-ASCII bytes are 0 in each. */
const JSON_PLAIN = asciiTable((c) => c >= 0x20 && c !== 34 && c !== 92);
const CSV_PLAIN = asciiTable((c) => c !== 0 && c !== 34 && c !== 44 && c !== 13 && c !== 10);
/** White space (as /\s/ in ASCII) makes a CSV field quoted when it leads or trails. */
const CSV_EDGE = asciiTable((c) => !(c === 32 || (c >= 9 && c <= 13)));
const TSV_PLAIN = asciiTable((c) => c !== 0 && c !== 9 && c !== 13 && c !== 10);

/** Indexed by any byte (no read past the end in the copy loops): bytes from 0x80 are 0, they need decoding. */
function asciiTable(plain: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 128; c++) t[c] = plain(c) ? 1 : 0;
  return t;
}
