/** Decoding of single BINARY/BINARY2 cells, shared by the row decoder and the text writer. */
import type { Cell, Scalar } from './types.js';
import { type Column, T } from './fields.js';
import { CellError } from './tabledata-values.js';

/** What an undecodable cell becomes (ReadOptions.invalidValues). */
export type InvalidValues = 'error' | 'null';

// Boolean bytes: 1 true, 0 false, 2 null (NUL, space, '?'), 3 invalid.
const BOOL = new Uint8Array(256).fill(3);
for (const c of 'Tt1') BOOL[c.charCodeAt(0)] = 1;
for (const c of 'Ff0') BOOL[c.charCodeAt(0)] = 0;
for (const c of '\0 ?') BOOL[c.charCodeAt(0)] = 2;

/** Decodes a string, an array, or an uncommon scalar of `items` primitives at q (`bytes` long). */
export function decodeCell(col: Column, buf: Buffer, view: DataView, q: number, items: number, bytes: number, invalidValues: InvalidValues): Cell {
  if (col.isString) return decodeString(col, buf, q, items, bytes);
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
      for (let i = 0; i < items; i++) out[i] = boolOf(col, buf[q + i], invalidValues);
      break;
  }
  return out;
}

/** A char/unicodeChar cell (a string, or string[] for two or more dimensions). */
export function decodeString(col: Column, buf: Buffer, q: number, items: number, bytes: number): Cell {
  const unicode = col.type === T.unicodeChar;
  if (!col.stringArray) {
    const s = unicode ? utf16be(buf, q, items) : utf8z(buf, q, bytes);
    return col.nullStr !== null && s === col.nullStr ? null : s;
  }
  const width = col.strLen;
  const n = items / width;
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = unicode ? utf16be(buf, q + 2 * width * i, width) : utf8z(buf, q + width * i, width);
  }
  return out;
}

/** A boolean byte: null for NUL, space and '?'; any other byte than T/t/1/F/f/0 is a CellError unless invalid values read as null. */
export function boolOf(col: Column, byte: number, invalidValues: InvalidValues): boolean | null {
  const b = BOOL[byte];
  if (b < 2) return b === 1;
  if (b === 2 || invalidValues === 'null') return null;
  throw new CellError(`byte 0x${byte.toString(16)} is not a valid boolean in column "${col.field.name}"`);
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
export function utf8z(buf: Buffer, start: number, bytes: number): string {
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
export function utf16be(buf: Buffer, start: number, units: number): string {
  let s = '';
  for (let i = 0; i < units; i++) {
    const u = (buf[start + 2 * i] << 8) | buf[start + 2 * i + 1];
    if (u === 0) break;
    s += String.fromCharCode(u);
  }
  return s;
}
