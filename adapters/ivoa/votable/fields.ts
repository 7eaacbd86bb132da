import type { ArrayShape, Datatype, FieldMeta } from './types.js';
import { isCharType, isStringArray, parseArraysize, sliceSize } from './arraysize.js';
import { malformed } from './errors.js';

/** Numeric codes for the datatypes; the decoders switch on these rather than on strings. */
export const T = {
  boolean: 0,
  bit: 1,
  unsignedByte: 2,
  short: 3,
  int: 4,
  long: 5,
  char: 6,
  unicodeChar: 7,
  float: 8,
  double: 9,
  floatComplex: 10,
  doubleComplex: 11,
} as const satisfies Record<Datatype, number>;

/** Bytes per primitive in BINARY/BINARY2 (bit is packed: 0 here). */
const PRIM_BYTES = [1, 0, 1, 2, 4, 8, 1, 2, 4, 8, 8, 16];

/** True when `s` is one of the twelve VOTable datatypes. */
export function isDatatype(s: string): s is Datatype {
  return Object.prototype.hasOwnProperty.call(T, s);
}

/**
 * A FIELD compiled for decoding: its shape reduced to the numbers the decoders need, and its
 * VALUES null sentinel parsed once into the column's value type.
 */
export interface Column {
  field: FieldMeta;
  index: number;
  /** A `T` code. */
  type: number;
  shape: ArrayShape | null;
  /** char/unicodeChar: the cell is a string (or string[]), never an element array. */
  isString: boolean;
  /** char/unicodeChar with two or more dimensions: string[]. */
  stringArray: boolean;
  /** Non-character cell that is an array (flat JS array). */
  isArray: boolean;
  /** Primitives per cell when fixed, per slice of the last dimension when variable. */
  slice: number;
  /** Bytes per primitive (bit: 0). */
  primBytes: number;
  /** Bytes the cell takes in BINARY when fixed-size; -1 when a 4-byte count precedes it. */
  fixedBytes: number;
  /** Bound on the variable dimension, or null. */
  maxLast: number | null;
  /** Fixed string length in primitives (char bytes, unicodeChar units); -1 when variable. */
  strLen: number;
  /** VALUES null sentinel for unsignedByte/short/int/float/double, else null. */
  nullNum: number | null;
  /** VALUES null sentinel for long. */
  nullBig: bigint | null;
  /** VALUES null sentinel for char/unicodeChar. */
  nullStr: string | null;
}

/** The FIELD/PARAM attributes we keep, as read from XML. */
export type FieldAttrs = Record<string, string>;

/**
 * Builds a FieldMeta from element attributes. `position` (1-based) names anonymous fields.
 * Throws when the datatype is missing or unknown, since no cell could then be decoded.
 */
export function fieldFromAttrs(attrs: FieldAttrs, position: number, element: 'FIELD' | 'PARAM'): FieldMeta {
  const name = attrs.name ?? attrs.ID ?? `col${position}`;
  const what = `${element} "${name}"`;
  const datatype = attrs.datatype;
  if (datatype === undefined) throw malformed(`${what} has no datatype attribute`);
  if (!isDatatype(datatype)) throw malformed(`${what} has unknown datatype "${datatype}"`);
  const meta: FieldMeta = { name, datatype, shape: parseArraysize(attrs.arraysize, what) };
  if (attrs.ID !== undefined) meta.ID = attrs.ID;
  if (attrs.arraysize !== undefined) meta.arraysize = attrs.arraysize;
  if (attrs.width !== undefined && /^\s*\d+\s*$/.test(attrs.width)) meta.width = Number(attrs.width);
  for (const key of ['precision', 'unit', 'ucd', 'utype', 'xtype', 'ref'] as const) {
    if (attrs[key] !== undefined) meta[key] = attrs[key];
  }
  return meta;
}

/** Compiles a FieldMeta for decoding; `index` is its position in the row. */
export function compileColumn(field: FieldMeta, index: number): Column {
  const type = T[field.datatype];
  const shape = field.shape;
  const isString = isCharType(field.datatype);
  const primBytes = PRIM_BYTES[type];
  const slice = shape === null ? 1 : sliceSize(shape);
  let fixedBytes: number;
  if (shape !== null && shape.variable) fixedBytes = -1;
  else if (type === T.bit) fixedBytes = (slice + 7) >> 3;
  else fixedBytes = slice * primBytes;
  let strLen = -1;
  if (isString) {
    if (shape === null) strLen = 1;
    else if (shape.dims.length > 0) strLen = shape.dims[0];
  }
  const col: Column = {
    field,
    index,
    type,
    shape,
    isString,
    stringArray: isString && isStringArray(shape),
    isArray: !isString && shape !== null,
    slice,
    primBytes,
    fixedBytes,
    maxLast: shape === null ? null : shape.maxLast,
    strLen,
    nullNum: null,
    nullBig: null,
    nullStr: null,
  };
  const sentinel = field.values?.null;
  if (sentinel !== undefined) applySentinel(col, sentinel);
  return col;
}

/** Parses a VALUES null attribute into the column's type; an unparsable one is ignored, as STIL does. */
function applySentinel(col: Column, text: string): void {
  switch (col.type) {
    case T.unsignedByte:
    case T.short:
    case T.int: {
      const v = parseIntegerText(text, col.type);
      if (typeof v === 'number') col.nullNum = v;
      return;
    }
    case T.long: {
      const v = parseLongText(text);
      if (typeof v === 'bigint') col.nullBig = v;
      return;
    }
    case T.float:
    case T.double: {
      // Deprecated for floating point (NaN is the null) but "must always be respected".
      const v = Number(text);
      if (text.trim() !== '' && !Number.isNaN(v)) col.nullNum = col.type === T.float ? Math.fround(v) : v;
      return;
    }
    case T.char:
    case T.unicodeChar:
      col.nullStr = text;
      return;
    default:
      return;
  }
}

const BITS: Record<number, number> = { [T.unsignedByte]: 8, [T.short]: 16, [T.int]: 32 };
const MIN: Record<number, number> = { [T.unsignedByte]: 0, [T.short]: -32768, [T.int]: -2147483648 };
const MAX: Record<number, number> = { [T.unsignedByte]: 255, [T.short]: 32767, [T.int]: 2147483647 };

/**
 * Parses a TABLEDATA integer literal for unsignedByte/short/int: optional sign and decimal
 * digits, or 0x and hex digits read as the type's bit pattern (0xffff is -1 for short).
 * Returns null for blank text and undefined when the text is not a valid literal in range.
 */
export function parseIntegerText(s: string, type: number): number | null | undefined {
  let i = 0;
  let n = s.length;
  while (i < n && isSpace(s.charCodeAt(i))) i++;
  while (n > i && isSpace(s.charCodeAt(n - 1))) n--;
  if (i === n) return null;
  let neg = false;
  let c = s.charCodeAt(i);
  if (c === 45 || c === 43) {
    neg = c === 45;
    i++;
    if (i === n) return undefined;
  }
  let v = 0;
  if (n - i > 2 && s.charCodeAt(i) === 48 && (s.charCodeAt(i + 1) | 0x20) === 120) {
    i += 2;
    const bits = BITS[type];
    if (n - i > bits / 4) return undefined;
    for (; i < n; i++) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) return undefined;
      v = v * 16 + d;
    }
    if (type !== T.unsignedByte && v >= 2 ** (bits - 1)) v -= 2 ** bits;
  } else {
    if (n - i > 12) return undefined;
    for (; i < n; i++) {
      c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return undefined;
      v = v * 10 + c;
    }
  }
  if (neg) v = -v;
  if (v < MIN[type] || v > MAX[type]) return undefined;
  return v === 0 ? 0 : v;
}

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const DECIMAL = /^[+-]?[0-9]+$/;
const HEX = /^([+-]?)0[xX]([0-9a-fA-F]{1,16})$/;

/** Parses a TABLEDATA long literal; null for blank text, undefined when invalid or out of range. */
export function parseLongText(s: string): bigint | null | undefined {
  const t = s.trim();
  if (t === '') return null;
  let v: bigint;
  if (DECIMAL.test(t)) {
    v = BigInt(t);
  } else {
    const m = HEX.exec(t);
    if (m === null) return undefined;
    v = BigInt.asIntN(64, BigInt(`0x${m[2]}`));
    if (m[1] === '-') v = -v;
  }
  if (v < LONG_MIN || v > LONG_MAX) return undefined;
  return v;
}

/** XML white space: space, tab, newline, carriage return. */
export function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}
