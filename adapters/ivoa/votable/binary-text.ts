import type { Cell } from './types.js';
import { type Column, T } from './fields.js';
import { boolOf, decodeCell, utf8z, type InvalidValues } from './binary-cells.js';
import { malformed } from './errors.js';
import { CellError } from './tabledata-values.js';
import type { TextTableWriter } from './text-table.js';
import { SpelledBytes } from './byte-sink.js';

// What a column's cells are, decided once: the common fixed-size scalars and strings are read
// from the bytes and written at once; anything else is decoded as a Cell first.
const DOUBLE = 0;
const FLOAT = 1;
const LONG = 2;
const INT = 3;
const SHORT = 4;
const UBYTE = 5;
const BOOLEAN = 6;
/** char (not an array of strings), fixed or variable length. */
const CHARS = 7;
const OTHER = 8;

function kindOf(col: Column): number {
  if (col.type === T.char && !col.stringArray) return CHARS;
  if (col.shape !== null || col.fixedBytes < 0) return OTHER;
  switch (col.type) {
    case T.double:
      return DOUBLE;
    case T.float:
      return FLOAT;
    case T.long:
      return LONG;
    case T.int:
      return INT;
    case T.short:
      return SHORT;
    case T.unsignedByte:
      return UBYTE;
    case T.boolean:
      return BOOLEAN;
    default:
      return OTHER;
  }
}

/** The batch's spelled doubles when it has none. */
const NO_DOUBLES = new Uint8Array(0);

/** A double the JSON.stringify of the batch spells (finite, not -0), as the row loop expects it. */
function spelledByJson(x: number): boolean {
  return x - x === 0 && (x !== 0 || 1 / x > 0);
}

/**
 * Writes BINARY/BINARY2 rows as CSV, TSV or JSON text straight from their bytes, through a
 * TextTableWriter: no Row array and no value object for the common scalar types, a long written
 * from its two 32-bit halves, an ASCII string copied byte for byte. The text is the one the
 * writer gives for the same rows decoded (null flags, VALUES null sentinels and NaN are nulls;
 * an invalid boolean byte is an error unless invalid values read as null).
 */
export class BinaryTextRows {
  private readonly kinds: Uint8Array;
  private readonly flagBytes: number;
  /** A long column's null sentinel as 32-bit halves (hi is NaN when there is none). */
  private readonly nullHi: Float64Array;
  private readonly nullLo: Float64Array;
  private readonly doubleCols: boolean;
  private readonly reals: number[] = [];
  private readonly spelledBytes = new SpelledBytes();
  /**
   * Where each DOUBLE column is in a row, when no variable-size column comes before it (the
   * usual layout: numbers first, strings last); empty when some DOUBLE column has no fixed place.
   */
  private readonly doubleAt: { col: number; offset: number }[] = [];
  /** The same places as typed arrays for the gathering loop: each one's flag byte and bit, offset and null value. */
  private readonly placed: { flagByte: Int32Array; flagMask: Uint8Array; offset: Int32Array; nullNum: Float64Array };

  constructor(
    private readonly cols: Column[],
    private readonly binary2: boolean,
    private readonly writer: TextTableWriter,
    private readonly invalidValues: InvalidValues,
  ) {
    this.kinds = Uint8Array.from(cols.map(kindOf));
    this.flagBytes = binary2 ? (cols.length + 7) >> 3 : 0;
    this.nullHi = new Float64Array(cols.length).fill(Number.NaN);
    this.nullLo = new Float64Array(cols.length);
    cols.forEach((col, c) => {
      if (col.nullBig === null) return;
      this.nullHi[c] = Number(BigInt.asIntN(32, col.nullBig >> 32n));
      this.nullLo[c] = Number(BigInt.asUintN(32, col.nullBig));
    });
    this.doubleCols = this.kinds.includes(DOUBLE);
    let offset = this.flagBytes;
    for (let c = 0; c < cols.length && offset >= 0; c++) {
      if (this.kinds[c] === DOUBLE) this.doubleAt.push({ col: c, offset });
      offset = cols[c].fixedBytes < 0 ? -1 : offset + cols[c].fixedBytes;
    }
    if (this.doubleAt.length !== this.kinds.filter((k) => k === DOUBLE).length) this.doubleAt.length = 0;
    const at = this.doubleAt;
    this.placed = {
      flagByte: Int32Array.from(at, (d) => d.col >> 3),
      flagMask: Uint8Array.from(at, (d) => (binary2 ? 0x80 >>> (d.col & 7) : 0)),
      offset: Int32Array.from(at, (d) => d.offset),
      // No null value: NaN, which no value equals (NaN itself is not spelled by JSON.stringify anyway).
      nullNum: Float64Array.from(at, (d) => cols[d.col].nullNum ?? Number.NaN),
    };
  }

  /** Write `count` rows starting at `starts[i]` in `buf` (see RawRows); `firstRow` numbers them in errors. */
  write(buf: Buffer, view: DataView, starts: Int32Array, count: number, firstRow: number): void {
    let spelled: Uint8Array = NO_DOUBLES;
    if (this.doubleCols) {
      // As in TextTableWriter: every double of the batch spelled by one JSON.stringify call.
      const reals = this.reals;
      reals.length = 0;
      if (this.doubleAt.length > 0) this.gatherPlaced(buf, view, starts, count, reals);
      else for (let i = 0; i < count; i++) this.gatherDoubles(buf, view, starts[i], reals);
      if (reals.length > 0) spelled = this.spelledBytes.of(JSON.stringify(reals));
    }
    let at = 1;
    let i = 0;
    try {
      for (; i < count; i++) at = this.row(buf, view, starts[i], spelled, at);
    } catch (err) {
      if (err instanceof CellError) throw malformed(`row ${firstRow + i + 1}: ${err.message}`, err);
      throw err;
    }
  }

  /** Byte length of a variable-size cell of `count` slices (already checked against the cell limit). */
  private varBytes(col: Column, count: number): number {
    const items = count * col.slice;
    return col.type === T.bit ? (items + 7) >> 3 : items * col.primBytes;
  }

  /** The batch's doubles, read at their fixed places (same order and choice as gatherDoubles). */
  private gatherPlaced(buf: Buffer, view: DataView, starts: Int32Array, count: number, reals: number[]): void {
    const { flagByte, flagMask, offset, nullNum } = this.placed;
    const m = offset.length;
    let n = reals.length;
    for (let i = 0; i < count; i++) {
      const p = starts[i];
      for (let k = 0; k < m; k++) {
        // flagMask is 0 for BINARY (no null flags): never null by its flag.
        if ((buf[p + flagByte[k]] & flagMask[k]) !== 0) continue;
        const v = view.getFloat64(p + offset[k]);
        if (v !== nullNum[k] && spelledByJson(v)) reals[n++] = v;
      }
    }
  }

  private gatherDoubles(buf: Buffer, view: DataView, p: number, reals: number[]): void {
    const cols = this.cols;
    const kinds = this.kinds;
    let q = p + this.flagBytes;
    let flags = 0;
    for (let c = 0; c < cols.length; c++) {
      if (this.binary2 && (c & 7) === 0) flags = buf[p + (c >> 3)];
      const col = cols[c];
      if (col.fixedBytes < 0) {
        q += 4 + this.varBytes(col, view.getInt32(q));
        continue;
      }
      if (kinds[c] === DOUBLE && (flags & (0x80 >>> (c & 7))) === 0) {
        const v = view.getFloat64(q);
        if (v !== col.nullNum && spelledByJson(v)) reals.push(v);
      }
      q += col.fixedBytes;
    }
  }

  /** One row; returns where the next double is in `spelled`. */
  private row(buf: Buffer, view: DataView, p: number, spelled: Uint8Array, at: number): number {
    const w = this.writer;
    const sink = w.sink;
    const cols = this.cols;
    const kinds = this.kinds;
    const sep = w.separator;
    let q = p + this.flagBytes;
    let flags = 0;
    w.beginRow();
    for (let c = 0; c < cols.length; c++) {
      if (c > 0) sink.byte(sep);
      if (this.binary2 && (c & 7) === 0) flags = buf[p + (c >> 3)];
      const isNull = (flags & (0x80 >>> (c & 7))) !== 0;
      const col = cols[c];
      let bytes = col.fixedBytes;
      let items = col.slice;
      if (bytes < 0) {
        const n = view.getInt32(q);
        q += 4;
        bytes = this.varBytes(col, n);
        items = n * col.slice;
      }
      if (isNull) {
        w.nullCell();
        q += bytes;
        continue;
      }
      switch (kinds[c]) {
        case DOUBLE: {
          const v = view.getFloat64(q);
          if (v !== v || v === col.nullNum) w.nullCell();
          else if (spelledByJson(v)) at = sink.numberBytes(spelled, at) + 1;
          else w.unusualReal(v);
          break;
        }
        case FLOAT: {
          const v = view.getFloat32(q);
          if (v !== v || v === col.nullNum) w.nullCell();
          else if (v - v === 0 && v !== 0) sink.float32(v);
          else w.unusualReal(v);
          break;
        }
        case LONG: {
          const hi = view.getInt32(q);
          const lo = view.getUint32(q + 4);
          if (hi === this.nullHi[c] && lo === this.nullLo[c]) w.nullCell();
          else sink.int64(hi, lo);
          break;
        }
        case INT:
          this.integer(col, view.getInt32(q));
          break;
        case SHORT:
          this.integer(col, view.getInt16(q));
          break;
        case UBYTE:
          this.integer(col, buf[q]);
          break;
        case BOOLEAN: {
          const b = boolOf(col, buf[q], this.invalidValues);
          if (b === null) w.nullCell();
          else sink.ascii(b ? 'true' : 'false');
          break;
        }
        case CHARS:
          this.chars(col, buf, q, bytes);
          break;
        default:
          this.cell(c, decodeCell(col, buf, view, q, items, bytes, this.invalidValues));
      }
      q += bytes;
    }
    w.endRow();
    return at;
  }

  private integer(col: Column, v: number): void {
    if (v === col.nullNum) this.writer.nullCell();
    else this.writer.sink.int(v);
  }

  /** A char string: up to its first NUL, ASCII copied as it is when the format allows. */
  private chars(col: Column, buf: Buffer, q: number, bytes: number): void {
    if (col.nullStr === null && this.writer.asciiCell(buf, q, q + bytes)) return;
    const s = utf8z(buf, q, bytes);
    if (s === col.nullStr) this.writer.nullCell();
    else this.writer.stringCell(s);
  }

  private cell(c: number, v: Cell): void {
    if (v === null) this.writer.nullCell();
    else if (typeof v === 'string') this.writer.stringCell(v);
    else this.writer.otherCell(c, v);
  }
}
