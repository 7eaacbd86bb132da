import { ConstellationError } from '../../../registry/model/errors.js';
import { type Column, T } from './fields.js';

// Characters XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF,
// unpaired surrogates): a value holding one could not be read back from any serialisation.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A value the writer cannot encode for its column: the caller's data is at fault. */
export function invalid(col: Column, row: number, message: string): ConstellationError {
  return new ConstellationError('INVALID_ARGUMENT', `VOTable writer: row ${row + 1}, column "${col.field.name}" (${col.field.datatype}): ${message}`);
}

/** Checks that a row is an array with one cell per FIELD. */
export function checkRowShape(cols: Column[], row: unknown, index: number): void {
  if (!Array.isArray(row) || row.length !== cols.length) {
    const got = Array.isArray(row) ? `${row.length} cells` : describe(row);
    throw new ConstellationError('INVALID_ARGUMENT', `VOTable writer: row ${index + 1} has ${got}, the table has ${cols.length} FIELDs`);
  }
}

const INT_RANGE: Record<number, [number, number]> = {
  [T.unsignedByte]: [0, 255],
  [T.short]: [-32768, 32767],
  [T.int]: [-2147483648, 2147483647],
};

/** An unsignedByte/short/int value, checked for type and range. */
export function toInt(col: Column, v: unknown, row: number): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(col, row, `${describe(v)} is not an integer`);
  const [min, max] = INT_RANGE[col.type];
  if (n < min || n > max) throw invalid(col, row, `${n} is outside ${min}..${max}`);
  return n;
}

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** A long value: a bigint, or a number that is a safe integer. */
export function toLong(col: Column, v: unknown, row: number): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else throw invalid(col, row, `${describe(v)} is not a bigint or a safe integer`);
  if (b < LONG_MIN || b > LONG_MAX) throw invalid(col, row, `${b} does not fit in 64 bits`);
  return b;
}

/** A float/double value (NaN and infinities allowed). */
export function toReal(col: Column, v: unknown, row: number): number {
  if (typeof v !== 'number') throw invalid(col, row, `${describe(v)} is not a number`);
  return col.type === T.float || col.type === T.floatComplex ? Math.fround(v) : v;
}

/** A floatComplex/doubleComplex value as [re, im]. */
export function toComplex(col: Column, v: unknown, row: number): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) throw invalid(col, row, `${describe(v)} is not a [re, im] pair`);
  return [toReal(col, v[0], row), toReal(col, v[1], row)];
}

/** A boolean value. */
export function toBool(col: Column, v: unknown, row: number): boolean {
  if (typeof v !== 'boolean') throw invalid(col, row, `${describe(v)} is not a boolean`);
  return v;
}

/**
 * A string for a char/unicodeChar column, checked against XML's character set and against
 * the arraysize: char counts UTF-8 bytes, unicodeChar counts UTF-16 units. `width` is the
 * fixed or maximum length, or -1 for no limit.
 */
export function toStr(col: Column, v: unknown, row: number, width: number): string {
  if (typeof v !== 'string') throw invalid(col, row, `${describe(v)} is not a string`);
  if (NOT_XML.test(v)) throw invalid(col, row, 'the string holds a character XML cannot carry');
  if (width >= 0) {
    const size = col.type === T.unicodeChar ? v.length : Buffer.byteLength(v, 'utf8');
    if (size > width) throw invalid(col, row, `"${v.slice(0, 40)}" is ${size} ${col.type === T.unicodeChar ? 'characters' : 'bytes'}, arraysize allows ${width}`);
  }
  return v;
}

/** The length limit for one string of a char/unicodeChar column (-1: none). */
export function stringWidth(col: Column): number {
  if (col.stringArray || col.strLen >= 0) return col.strLen;
  return col.maxLast ?? -1;
}

/**
 * The elements of an array cell, checked against the arraysize: exact count when fixed,
 * whole slices (at most maxLast of them) when variable. Complex cells count pairs.
 */
export function elementsOf(col: Column, v: unknown, row: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(col, row, `${describe(v)} is not an array`);
  const shape = col.shape!;
  const n = v.length;
  if (!shape.variable) {
    if (n !== col.slice) throw invalid(col, row, `${n} elements, arraysize "${col.field.arraysize}" needs ${col.slice}`);
  } else if (n % col.slice !== 0) {
    throw invalid(col, row, `${n} elements is not a whole number of ${col.slice}-element slices`);
  } else if (shape.maxLast !== null && n / col.slice > shape.maxLast) {
    throw invalid(col, row, `${n} elements exceed arraysize "${col.field.arraysize}"`);
  }
  return v;
}

/** The strings of a string-array cell (char/unicodeChar with two or more dimensions). */
export function stringsOf(col: Column, v: unknown, row: number): string[] {
  if (!Array.isArray(v)) throw invalid(col, row, `${describe(v)} is not an array of strings`);
  const per = col.slice / col.strLen;
  const shape = col.shape!;
  if (!shape.variable && v.length !== per) throw invalid(col, row, `${v.length} strings, arraysize "${col.field.arraysize}" needs ${per}`);
  if (shape.variable) {
    const slices = v.length / per;
    if (!Number.isInteger(slices)) throw invalid(col, row, `${v.length} strings is not a whole number of ${per}-string slices`);
    if (shape.maxLast !== null && slices > shape.maxLast) throw invalid(col, row, `${v.length} strings exceed arraysize "${col.field.arraysize}"`);
  }
  return v.map((s) => (s === null || s === undefined ? '' : toStr(col, s, row, col.strLen)));
}

/** The integer to write for a null element of an integer array: the VALUES null sentinel. */
export function nullElement(col: Column, row: number): number | bigint {
  if (col.type === T.long) {
    if (col.nullBig !== null) return col.nullBig;
  } else if (col.nullNum !== null) {
    return col.nullNum;
  }
  throw invalid(col, row, 'a null array element needs a VALUES null sentinel on the FIELD');
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return 'an array';
  return String(v);
}
