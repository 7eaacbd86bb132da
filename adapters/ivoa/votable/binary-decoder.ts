import type { Cell, Row, Scalar } from './types.js';
import { type Column, T } from './fields.js';
import { Base64Decoder } from './base64-stream.js';
import { malformed } from './errors.js';
import { CellError } from './tabledata-values.js';

const INITIAL_BYTES = 1 << 18;

// Boolean bytes: 1 true, 0 false, 2 null (NUL, space, '?'), 3 invalid.
const BOOL = new Uint8Array(256).fill(3);
for (const c of 'Tt1') BOOL[c.charCodeAt(0)] = 1;
for (const c of 'Ff0') BOOL[c.charCodeAt(0)] = 0;
for (const c of '\0 ?') BOOL[c.charCodeAt(0)] = 2;

/** Options the row decoder needs from the reader. */
export interface BinaryDecoderOptions {
  invalidValues: 'error' | 'null';
  maxCellBytes: number;
}

/**
 * Decodes the base64 content of a BINARY or BINARY2 STREAM into rows as the text arrives.
 * Decoded bytes go into one reusable buffer read through a DataView; only the tail of a row
 * split across input chunks is kept between calls, so memory does not grow with the table.
 */
export class BinaryRowDecoder {
  private buf: Buffer;
  private view: DataView;
  /** Bytes decoded into `buf`. */
  private len = 0;
  /** Start of the first row not yet decoded. */
  private pos = 0;
  private readonly b64 = new Base64Decoder();
  private readonly flagBytes: number;
  /** Bytes per row when every column is fixed-size, else -1. */
  private readonly rowBytes: number;
  /** Rows decoded so far (for error messages). */
  rowCount = 0;

  constructor(
    private readonly cols: Column[],
    private readonly binary2: boolean,
    private readonly opts: BinaryDecoderOptions,
    private readonly onRow: (row: Row) => void,
  ) {
    this.buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.flagBytes = binary2 ? (cols.length + 7) >> 3 : 0;
    let rowBytes = this.flagBytes;
    for (const c of cols) {
      if (c.fixedBytes < 0) {
        rowBytes = -1;
        break;
      }
      rowBytes += c.fixedBytes;
    }
    this.rowBytes = rowBytes;
  }

  /** Takes base64 text[start, end) (no markup inside) and emits every row it completes. */
  push(text: string, start: number, end: number): void {
    let i = start;
    while (i < end) {
      this.makeRoom();
      this.b64.decode(text, i, end, this.buf, this.len, this.buf.length);
      i = this.b64.consumed;
      this.len += this.b64.written;
      this.decodeRows();
    }
  }

  /** Called at the STREAM end tag: the data must end on a row boundary. */
  finish(): void {
    this.makeRoom();
    this.len += this.b64.finish(this.buf, this.len);
    this.decodeRows();
    const left = this.len - this.pos;
    if (left > 0) {
      throw malformed(`STREAM ends in the middle of row ${this.rowCount + 1} (${left} bytes of it present): truncated data`);
    }
  }

  /** Bytes of an unfinished row held back (for truncation messages). */
  get pendingBytes(): number {
    return this.len - this.pos;
  }

  private makeRoom(): void {
    const cap = this.buf.length;
    if (cap - this.len >= cap >> 2) return;
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.len);
      this.len -= this.pos;
      this.pos = 0;
      if (cap - this.len >= cap >> 2) return;
    }
    // One row is larger than three quarters of the buffer: grow; rowLength bounds the size.
    const bigger = Buffer.allocUnsafeSlow(cap * 2);
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
  }

  private decodeRows(): void {
    try {
      this.decodeRowsUnchecked();
    } catch (err) {
      if (err instanceof CellError) throw malformed(`row ${this.rowCount + 1}: ${err.message}`, err);
      throw err;
    }
  }

  private decodeRowsUnchecked(): void {
    const fixed = this.rowBytes;
    let pos = this.pos;
    const len = this.len;
    // Rows without cells take no bytes: data here could never be consumed.
    if (fixed === 0 && len > pos) throw malformed('a STREAM holds data for a TABLE without FIELDs');
    if (fixed > 0) {
      while (len - pos >= fixed) {
        this.onRow(this.decodeRow(pos));
        this.rowCount++;
        pos += fixed;
      }
    } else if (fixed < 0) {
      for (;;) {
        const n = this.rowLength(pos);
        if (n < 0 || len - pos < n) break;
        this.onRow(this.decodeRow(pos));
        this.rowCount++;
        pos += n;
      }
    }
    this.pos = pos;
  }

  /** Length of the row starting at p, or -1 when its length is not yet known. */
  private rowLength(p: number): number {
    let q = p + this.flagBytes;
    const cols = this.cols;
    for (let c = 0; c < cols.length; c++) {
      const col = cols[c];
      if (col.fixedBytes >= 0) {
        q += col.fixedBytes;
        continue;
      }
      if (q + 4 > this.len) return -1;
      const count = this.view.getInt32(q);
      q += 4 + this.varBytes(col, count);
    }
    return q - p;
  }

  /** Bytes taken by `count` slices of a variable-size column; rejects hostile counts. */
  private varBytes(col: Column, count: number): number {
    if (count < 0) throw malformed(`row ${this.rowCount + 1}, column "${col.field.name}": negative array length ${count}`);
    const items = count * col.slice;
    const bytes = col.type === T.bit ? (items + 7) >> 3 : items * col.primBytes;
    if (bytes > this.opts.maxCellBytes) {
      throw malformed(`row ${this.rowCount + 1}, column "${col.field.name}": ${bytes} bytes exceeds the ${this.opts.maxCellBytes}-byte cell limit`);
    }
    return bytes;
  }

  private decodeRow(p: number): Row {
    const cols = this.cols;
    const ncols = cols.length;
    const buf = this.buf;
    const view = this.view;
    const row: Row = new Array(ncols);
    let q = p + this.flagBytes;
    let flags = 0;
    for (let c = 0; c < ncols; c++) {
      if (this.binary2 && (c & 7) === 0) flags = buf[p + (c >> 3)];
      const isNull = (flags & (0x80 >>> (c & 7))) !== 0;
      const col = cols[c];
      if (col.fixedBytes < 0) {
        const count = view.getInt32(q);
        q += 4;
        const bytes = this.varBytes(col, count);
        if (isNull) {
          row[c] = null;
        } else if (col.type === T.char && !col.stringArray) {
          const s = utf8z(buf, q, bytes);
          row[c] = s === col.nullStr ? null : s;
        } else {
          row[c] = this.decodeCell(col, q, count * col.slice, bytes);
        }
        q += bytes;
        continue;
      }
      if (isNull) {
        row[c] = null;
      } else if (col.shape !== null) {
        row[c] = this.decodeCell(col, q, col.slice, col.fixedBytes);
      } else {
        switch (col.type) {
          case T.double: {
            const v = view.getFloat64(q);
            row[c] = v !== v || v === col.nullNum ? null : v;
            break;
          }
          case T.float: {
            const v = view.getFloat32(q);
            row[c] = v !== v || v === col.nullNum ? null : v;
            break;
          }
          case T.long: {
            const v = view.getBigInt64(q);
            row[c] = v === col.nullBig ? null : v;
            break;
          }
          case T.int: {
            const v = view.getInt32(q);
            row[c] = v === col.nullNum ? null : v;
            break;
          }
          case T.short: {
            const v = view.getInt16(q);
            row[c] = v === col.nullNum ? null : v;
            break;
          }
          case T.unsignedByte: {
            const v = buf[q];
            row[c] = v === col.nullNum ? null : v;
            break;
          }
          case T.boolean:
            row[c] = this.bool(col, buf[q]);
            break;
          default:
            row[c] = this.decodeCell(col, q, 1, col.fixedBytes);
        }
      }
      q += col.fixedBytes;
    }
    return row;
  }

  /** Decodes a string, an array, or an uncommon scalar of `items` primitives at q. */
  private decodeCell(col: Column, q: number, items: number, bytes: number): Cell {
    if (col.isString) return this.decodeString(col, q, items, bytes);
    const view = this.view;
    const buf = this.buf;
    const scalar = col.shape === null;
    switch (col.type) {
      case T.bit: {
        // The spec puts a lone bit in the most significant bit (0x80); astropy writes 0x08.
        // Padding bits must be zero, so any set bit can only mean true.
        if (scalar) return buf[q] !== 0;
        const out: boolean[] = new Array(items);
        for (let i = 0; i < items; i++) out[i] = (buf[q + (i >> 3)] & (0x80 >>> (i & 7))) !== 0;
        return out;
      }
      case T.floatComplex:
      case T.doubleComplex: {
        const double = col.type === T.doubleComplex;
        const step = double ? 8 : 4;
        const out: (Scalar | null)[] = new Array(items);
        for (let i = 0; i < items; i++) {
          const at = q + 2 * step * i;
          const re = double ? view.getFloat64(at) : view.getFloat32(at);
          const im = double ? view.getFloat64(at + step) : view.getFloat32(at + step);
          out[i] = re !== re || im !== im ? null : [re, im];
        }
        return scalar ? out[0] : out;
      }
    }
    const out: (Scalar | null)[] = new Array(items);
    switch (col.type) {
      case T.double:
        for (let i = 0; i < items; i++) {
          const v = view.getFloat64(q + 8 * i);
          out[i] = v !== v || v === col.nullNum ? null : v;
        }
        break;
      case T.float:
        for (let i = 0; i < items; i++) {
          const v = view.getFloat32(q + 4 * i);
          out[i] = v !== v || v === col.nullNum ? null : v;
        }
        break;
      case T.long:
        for (let i = 0; i < items; i++) {
          const v = view.getBigInt64(q + 8 * i);
          out[i] = v === col.nullBig ? null : v;
        }
        break;
      case T.int:
        for (let i = 0; i < items; i++) {
          const v = view.getInt32(q + 4 * i);
          out[i] = v === col.nullNum ? null : v;
        }
        break;
      case T.short:
        for (let i = 0; i < items; i++) {
          const v = view.getInt16(q + 2 * i);
          out[i] = v === col.nullNum ? null : v;
        }
        break;
      case T.unsignedByte:
        for (let i = 0; i < items; i++) {
          const v = buf[q + i];
          out[i] = v === col.nullNum ? null : v;
        }
        break;
      case T.boolean:
        for (let i = 0; i < items; i++) out[i] = this.bool(col, buf[q + i]);
        break;
    }
    return out;
  }

  private decodeString(col: Column, q: number, items: number, bytes: number): Cell {
    const unicode = col.type === T.unicodeChar;
    if (!col.stringArray) {
      const s = unicode ? utf16be(this.buf, q, items) : utf8z(this.buf, q, bytes);
      return col.nullStr !== null && s === col.nullStr ? null : s;
    }
    const width = col.strLen;
    const n = items / width;
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = unicode ? utf16be(this.buf, q + 2 * width * i, width) : utf8z(this.buf, q + width * i, width);
    }
    return out;
  }

  private bool(col: Column, byte: number): boolean | null {
    const b = BOOL[byte];
    if (b < 2) return b === 1;
    if (b === 2 || this.opts.invalidValues === 'null') return null;
    throw new CellError(`byte 0x${byte.toString(16)} is not a valid boolean in column "${col.field.name}"`);
  }
}

interface NativeSlices {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

// Buffer's own slice methods skip the argument handling of toString(), which is most of the
// cost for short strings such as Gaia designations; fall back if a runtime lacks them.
const proto = Buffer.prototype as unknown as Partial<NativeSlices>;
const FAST_SLICES = typeof proto.latin1Slice === 'function' && typeof proto.utf8Slice === 'function';

/** UTF-8 bytes up to the first NUL (fixed-length strings are NUL-padded). */
function utf8z(buf: Buffer, start: number, bytes: number): string {
  const end = start + bytes;
  let i = start;
  let high = 0;
  for (; i < end; i++) {
    const b = buf[i];
    if (b === 0) break;
    high |= b;
  }
  if (i === start) return '';
  if (!FAST_SLICES) return buf.toString('utf8', start, i);
  const native = buf as unknown as NativeSlices;
  // Pure ASCII is the same in Latin-1, whose decoder is a plain copy.
  return high < 0x80 ? native.latin1Slice(start, i) : native.utf8Slice(start, i);
}

/** `units` UTF-16BE code units up to the first U+0000. */
function utf16be(buf: Buffer, start: number, units: number): string {
  let s = '';
  for (let i = 0; i < units; i++) {
    const u = (buf[start + 2 * i] << 8) | buf[start + 2 * i + 1];
    if (u === 0) break;
    s += String.fromCharCode(u);
  }
  return s;
}
