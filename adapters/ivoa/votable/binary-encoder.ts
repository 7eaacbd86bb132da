import type { Row } from './types.js';
import { type Column, T } from './fields.js';
import {
  checkRowShape,
  elementsOf,
  invalid,
  nullElement,
  stringWidth,
  stringsOf,
  toBool,
  toComplex,
  toInt,
  toLong,
  toReal,
  toStr,
} from './write-values.js';

const ALPHABET = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
/** Bytes per base64 line: 57 bytes make the customary 76 characters. */
const LINE_BYTES = 57;

/**
 * Encodes rows as BINARY2 (null-flag bitmap, then each cell big-endian) into a reusable
 * buffer, and hands out the base64 text of whole lines as it fills.
 */
export class Binary2Encoder {
  private bin = Buffer.allocUnsafeSlow(1 << 16);
  private view = new DataView(this.bin.buffer, this.bin.byteOffset, this.bin.byteLength);
  private len = 0;
  private readonly flagBytes: number;

  constructor(private readonly cols: Column[]) {
    this.flagBytes = (cols.length + 7) >> 3;
  }

  /** Binary bytes waiting to be base64-encoded. */
  get pending(): number {
    return this.len;
  }

  /** Appends one row; `index` (0-based) is for error messages. */
  addRow(row: Row, index: number): void {
    checkRowShape(this.cols, row, index);
    const start = this.len;
    this.ensure(this.flagBytes);
    this.bin.fill(0, start, start + this.flagBytes);
    this.len += this.flagBytes;
    const cols = this.cols;
    for (let c = 0; c < cols.length; c++) {
      const v = row[c];
      if (v === null || v === undefined) {
        this.bin[start + (c >> 3)] |= 0x80 >>> (c & 7);
        this.writeNull(cols[c]);
      } else {
        this.writeCell(cols[c], v, index);
      }
    }
  }

  /**
   * Base64 text (76-character lines) of the buffered bytes: all whole lines, or everything
   * with padding when `final`. The bytes of a partial line stay buffered.
   */
  drain(final: boolean): Uint8Array {
    const take = final ? this.len : this.len - (this.len % LINE_BYTES);
    const lines = Math.ceil(take / LINE_BYTES);
    const out = new Uint8Array(Math.ceil(take / 3) * 4 + lines);
    let o = 0;
    for (let s = 0; s < take; s += LINE_BYTES) {
      o = encodeLine(this.bin, s, Math.min(s + LINE_BYTES, take), out, o);
      out[o++] = 10;
    }
    this.bin.copyWithin(0, take, this.len);
    this.len -= take;
    return out.subarray(0, o);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.bin.length) return;
    let cap = this.bin.length * 2;
    while (cap < this.len + n) cap *= 2;
    const bigger = Buffer.allocUnsafeSlow(cap);
    this.bin.copy(bigger, 0, 0, this.len);
    this.bin = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
  }

  private count(n: number): void {
    this.ensure(4);
    this.view.setInt32(this.len, n);
    this.len += 4;
  }

  /** Zero bytes (NaN for floating point, as BINARY2 recommends); a zero count when variable. */
  private writeNull(col: Column): void {
    if (col.fixedBytes < 0) {
      this.count(0);
      return;
    }
    const n = col.fixedBytes;
    this.ensure(n);
    if (col.type === T.double || col.type === T.doubleComplex) {
      for (let i = 0; i < n; i += 8) this.view.setFloat64(this.len + i, Number.NaN);
    } else if (col.type === T.float || col.type === T.floatComplex) {
      for (let i = 0; i < n; i += 4) this.view.setFloat32(this.len + i, Number.NaN);
    } else {
      this.bin.fill(0, this.len, this.len + n);
    }
    this.len += n;
  }

  private writeCell(col: Column, v: unknown, row: number): void {
    if (col.isString) {
      this.writeString(col, v, row);
      return;
    }
    if (col.shape === null) {
      this.ensure(Math.max(col.fixedBytes, 1));
      this.writeScalar(col, v, row);
      return;
    }
    const items = elementsOf(col, v, row);
    const n = items.length;
    if (col.fixedBytes < 0) this.count(n / col.slice);
    if (col.type === T.bit) {
      const bytes = (n + 7) >> 3;
      this.ensure(bytes);
      this.bin.fill(0, this.len, this.len + bytes);
      for (let i = 0; i < n; i++) if (toBool(col, items[i], row)) this.bin[this.len + (i >> 3)] |= 0x80 >>> (i & 7);
      this.len += bytes;
      return;
    }
    this.ensure(n * col.primBytes);
    for (let i = 0; i < n; i++) {
      const x = items[i];
      if (x === null || x === undefined) this.writeNullElement(col, row);
      else this.writeScalar(col, x, row);
    }
  }

  private writeNullElement(col: Column, row: number): void {
    switch (col.type) {
      case T.float:
      case T.double:
        this.writeScalar(col, Number.NaN, row);
        return;
      case T.floatComplex:
      case T.doubleComplex:
        this.writeScalar(col, [Number.NaN, Number.NaN], row);
        return;
      case T.boolean:
        this.bin[this.len++] = 0x3f;
        return;
      default:
        this.writeScalar(col, nullElement(col, row), row);
    }
  }

  /** Writes one primitive (capacity already ensured). */
  private writeScalar(col: Column, v: unknown, row: number): void {
    const view = this.view;
    const at = this.len;
    switch (col.type) {
      case T.double:
        view.setFloat64(at, toReal(col, v, row));
        this.len += 8;
        return;
      case T.float:
        view.setFloat32(at, toReal(col, v, row));
        this.len += 4;
        return;
      case T.long:
        view.setBigInt64(at, toLong(col, v, row));
        this.len += 8;
        return;
      case T.int:
        view.setInt32(at, toInt(col, v, row));
        this.len += 4;
        return;
      case T.short:
        view.setInt16(at, toInt(col, v, row));
        this.len += 2;
        return;
      case T.unsignedByte:
        this.bin[at] = toInt(col, v, row);
        this.len += 1;
        return;
      case T.boolean:
        this.bin[at] = toBool(col, v, row) ? 0x54 : 0x46;
        this.len += 1;
        return;
      case T.bit:
        this.bin[at] = toBool(col, v, row) ? 0x80 : 0;
        this.len += 1;
        return;
      case T.floatComplex: {
        const [re, im] = toComplex(col, v, row);
        view.setFloat32(at, re);
        view.setFloat32(at + 4, im);
        this.len += 8;
        return;
      }
      case T.doubleComplex: {
        const [re, im] = toComplex(col, v, row);
        view.setFloat64(at, re);
        view.setFloat64(at + 8, im);
        this.len += 16;
        return;
      }
      default:
        throw invalid(col, row, 'unexpected datatype');
    }
  }

  private writeString(col: Column, v: unknown, row: number): void {
    const unicode = col.type === T.unicodeChar;
    if (col.stringArray) {
      const strings = stringsOf(col, v, row);
      const width = col.strLen;
      if (col.fixedBytes < 0) this.count(strings.length / (col.slice / width));
      for (const s of strings) this.writeChars(s, unicode, width);
      return;
    }
    const s = toStr(col, v, row, stringWidth(col));
    if (col.strLen >= 0) {
      this.writeChars(s, unicode, col.strLen);
      return;
    }
    const units = unicode ? s.length : Buffer.byteLength(s, 'utf8');
    this.count(units);
    this.writeChars(s, unicode, units);
  }

  /** Writes `s` in exactly `width` primitives, NUL-padded (the reader stops at the first NUL). */
  private writeChars(s: string, unicode: boolean, width: number): void {
    const bytes = unicode ? 2 * width : width;
    this.ensure(bytes);
    const at = this.len;
    let used: number;
    if (unicode) {
      for (let i = 0; i < s.length; i++) this.view.setUint16(at + 2 * i, s.charCodeAt(i));
      used = 2 * s.length;
    } else {
      used = this.bin.write(s, at, bytes, 'utf8');
    }
    this.bin.fill(0, at + used, at + bytes);
    this.len += bytes;
  }
}

/** Base64 of src[s, e) into out at o (with padding when the length is not a multiple of 3). */
function encodeLine(src: Uint8Array, s: number, e: number, out: Uint8Array, o: number): number {
  let i = s;
  for (; i + 3 <= e; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    out[o] = ALPHABET[v >>> 18];
    out[o + 1] = ALPHABET[(v >>> 12) & 63];
    out[o + 2] = ALPHABET[(v >>> 6) & 63];
    out[o + 3] = ALPHABET[v & 63];
    o += 4;
  }
  const rest = e - i;
  if (rest > 0) {
    const v = (src[i] << 16) | (rest === 2 ? src[i + 1] << 8 : 0);
    out[o++] = ALPHABET[v >>> 18];
    out[o++] = ALPHABET[(v >>> 12) & 63];
    out[o++] = rest === 2 ? ALPHABET[(v >>> 6) & 63] : 0x3d;
    out[o++] = 0x3d;
  }
  return o;
}
