import type { Row } from './types.js';
import { type Column, T } from './fields.js';
import { Base64Decoder } from './base64-stream.js';
import { malformed } from './errors.js';
import { CellError } from './tabledata-values.js';
import { boolOf, decodeCell, utf8z, type InvalidValues } from './binary-cells.js';

const INITIAL_BYTES = 1 << 18;

/**
 * Complete rows as bytes: row i is at buf[starts[i]…] (valid only during the call), for
 * i < count; `firstRow` is the 0-based number of the first. Variable-length counts have been
 * checked against the cell limit already.
 */
export type RawRows = (buf: Buffer, view: DataView, starts: Int32Array, count: number, firstRow: number) => void;

/** Options the row decoder needs from the reader. */
export interface BinaryDecoderOptions {
  invalidValues: InvalidValues;
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
  /** The variable-size columns, and the fixed bytes before the first, between two, and after the last. */
  private readonly varCols: Column[] = [];
  private readonly gaps: number[] = [];
  /** Where each row handed to `onRaw` starts (reused). */
  private starts = new Int32Array(1024);

  constructor(
    private readonly cols: Column[],
    private readonly binary2: boolean,
    private readonly opts: BinaryDecoderOptions,
    private readonly onRow: (row: Row) => void,
    /** When given, rows are not decoded into Row arrays but handed over as bytes (see RawRows). */
    private readonly onRaw?: RawRows,
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
    let gap = this.flagBytes;
    for (const c of cols) {
      if (c.fixedBytes >= 0) {
        gap += c.fixedBytes;
      } else {
        this.varCols.push(c);
        this.gaps.push(gap);
        gap = 0;
      }
    }
    this.gaps.push(gap);
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
    if (this.onRaw) {
      this.pos = this.rawRows(this.onRaw, fixed, pos, len);
      return;
    }
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

  /** Hands every complete row from `pos` over as its bytes; returns where the first incomplete row starts. */
  private rawRows(onRaw: RawRows, fixed: number, pos: number, len: number): number {
    let starts = this.starts;
    let n = 0;
    for (;;) {
      const size = fixed > 0 ? fixed : this.rowLength(pos);
      if (size <= 0 || len - pos < size) break;
      if (n === starts.length) {
        const bigger = new Int32Array(starts.length * 2);
        bigger.set(starts);
        starts = this.starts = bigger;
      }
      starts[n++] = pos;
      pos += size;
    }
    if (n > 0) {
      onRaw(this.buf, this.view, starts, n, this.rowCount);
      this.rowCount += n;
    }
    return pos;
  }

  /** Length of the row starting at p, or -1 when its length is not yet known. */
  private rowLength(p: number): number {
    // Only the variable-size cells are looked at; the fixed bytes between them are summed once.
    let q = p + this.gaps[0];
    const vars = this.varCols;
    for (let k = 0; k < vars.length; k++) {
      if (q + 4 > this.len) return -1;
      const count = this.view.getInt32(q);
      q += 4 + this.varBytes(vars[k], count) + this.gaps[k + 1];
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
          row[c] = decodeCell(col, buf, view, q, count * col.slice, bytes, this.opts.invalidValues);
        }
        q += bytes;
        continue;
      }
      if (isNull) {
        row[c] = null;
      } else if (col.shape !== null) {
        row[c] = decodeCell(col, buf, view, q, col.slice, col.fixedBytes, this.opts.invalidValues);
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
            row[c] = boolOf(col, buf[q], this.opts.invalidValues);
            break;
          default:
            row[c] = decodeCell(col, buf, view, q, 1, col.fixedBytes, this.opts.invalidValues);
        }
      }
      q += col.fixedBytes;
    }
    return row;
  }
}
