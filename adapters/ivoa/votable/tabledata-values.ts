import type { Cell, Complex, Scalar } from './types.js';
import { type Column, T, isSpace, parseIntegerText, parseLongText } from './fields.js';

/** A cell whose text does not fit its datatype; the reader adds the row and column. */
export class CellError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CellError';
  }
}

/**
 * Decodes the text of one TD (entities already resolved) for `col`. An empty TD is null for
 * every datatype (VOTable 1.3+), so empty strings and empty arrays read back as null.
 * Throws CellError when the text is not a valid literal.
 */
export function parseTableDataCell(col: Column, text: string): Cell {
  if (text.length === 0) return null;
  if (col.isString) return parseStringCell(col, text);
  if (col.isArray) return parseArrayCell(col, text);
  return parseScalar(col, text);
}

function parseStringCell(col: Column, text: string): Cell {
  if (col.nullStr !== null && text === col.nullStr) return null;
  if (!col.stringArray) return text;
  const width = col.strLen;
  const out: string[] = [];
  // Fixed-width strings of an array of strings are padded; padding is not part of the value.
  for (let i = 0; i < text.length; i += width) out.push(text.slice(i, i + width).replace(/[\s\0]+$/, ''));
  if (col.shape !== null && !col.shape.variable) {
    const want = col.slice / width;
    if (out.length > want) throw new CellError(`${out.length} strings where arraysize allows ${want}`);
    while (out.length < want) out.push('');
  }
  return out;
}

function parseScalar(col: Column, text: string): Cell {
  switch (col.type) {
    case T.double:
    case T.float:
      return parseReal(col, text);
    case T.int:
    case T.short:
    case T.unsignedByte: {
      const v = parseIntegerText(text, col.type);
      if (v === undefined) throw new CellError(`"${text}" is not a valid ${col.field.datatype}`);
      return v === null || v === col.nullNum ? null : v;
    }
    case T.long: {
      const v = parseLongText(text);
      if (v === undefined) throw new CellError(`"${text}" is not a valid long`);
      return v === null || v === col.nullBig ? null : v;
    }
    case T.boolean:
      return parseBoolean(text.trim());
    case T.bit: {
      const t = text.trim();
      if (t === '') return null;
      if (t === '1') return true;
      if (t === '0') return false;
      throw new CellError(`"${text}" is not a valid bit`);
    }
    case T.floatComplex:
    case T.doubleComplex: {
      const parts = splitTokens(text);
      if (parts.length === 0) return null;
      if (parts.length !== 2) throw new CellError(`"${text}" is not a complex number (two reals)`);
      return complexOf(col, parts[0], parts[1]);
    }
    default:
      throw new CellError(`unexpected datatype ${col.field.datatype}`);
  }
}

function parseReal(col: Column, text: string): number | null {
  let v = Number(text);
  if (Number.isNaN(v) || (v === 0 && isBlank(text))) {
    const special = specialReal(text);
    if (special === undefined) throw new CellError(`"${text}" is not a valid ${col.field.datatype}`);
    v = special;
  }
  if (Number.isNaN(v)) return null;
  if (col.type === T.float) v = Math.fround(v);
  return v === col.nullNum ? null : v;
}

/** NaN/Inf spellings Number() rejects; undefined when the text is not one. */
function specialReal(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === '') return Number.NaN;
  const body = t[0] === '+' || t[0] === '-' ? t.slice(1) : t;
  if (body === 'nan') return Number.NaN;
  if (body === 'inf' || body === 'infinity') return t[0] === '-' ? -Infinity : Infinity;
  return undefined;
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) return false;
  return true;
}

function parseBoolean(t: string): boolean | null {
  if (t.length === 1) {
    switch (t) {
      case 'T':
      case 't':
      case '1':
        return true;
      case 'F':
      case 'f':
      case '0':
        return false;
      case '?':
        return null;
    }
  } else if (t === '') {
    return null;
  } else {
    const l = t.toLowerCase();
    if (l === 'true') return true;
    if (l === 'false') return false;
  }
  throw new CellError(`"${t}" is not a valid boolean`);
}

function complexOf(col: Column, re: string, im: string): Complex | null {
  const a = parseRealToken(col, re);
  const b = parseRealToken(col, im);
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return [a, b];
}

function parseRealToken(col: Column, tok: string): number {
  let v = Number(tok);
  if (Number.isNaN(v)) {
    const special = specialReal(tok);
    if (special === undefined) throw new CellError(`"${tok}" is not a valid ${col.field.datatype} part`);
    v = special;
  }
  return col.type === T.floatComplex ? Math.fround(v) : v;
}

/** Splits on XML white space; commas are accepted too since some services write "1.0,2.0". */
function splitTokens(text: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c) || c === 44) {
      if (start >= 0) {
        out.push(text.slice(start, i));
        start = -1;
      }
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(text.slice(start));
  return out;
}

function parseArrayCell(col: Column, text: string): Cell {
  let tokens: string[];
  if (col.type === T.bit) {
    // Bits may be written with or without separating white space ("0110" or "0 1 1 0").
    tokens = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 48 || c === 49) tokens.push(c === 49 ? '1' : '0');
      else if (!isSpace(c)) throw new CellError(`"${text}" is not a valid bit array`);
    }
  } else {
    tokens = splitTokens(text);
  }
  if (tokens.length === 0) return null;
  const complex = col.type === T.floatComplex || col.type === T.doubleComplex;
  const count = complex ? tokens.length / 2 : tokens.length;
  if (!Number.isInteger(count)) throw new CellError(`odd number of reals (${tokens.length}) for a complex array`);
  checkCount(col, count);
  const out: (Scalar | null)[] = new Array(count);
  if (complex) {
    for (let i = 0; i < count; i++) out[i] = complexOf(col, tokens[2 * i], tokens[2 * i + 1]);
    return out;
  }
  for (let i = 0; i < count; i++) out[i] = parseElement(col, tokens[i]);
  return out;
}

function parseElement(col: Column, tok: string): Scalar | null {
  switch (col.type) {
    case T.bit:
      return tok === '1';
    case T.boolean:
      return parseBoolean(tok);
    default:
      return parseScalar(col, tok) as Scalar | null;
  }
}

/** Checks an element count against the arraysize: exact when fixed, whole slices when variable. */
export function checkCount(col: Column, count: number): void {
  const shape = col.shape;
  if (shape === null) return;
  if (!shape.variable) {
    if (count !== col.slice) throw new CellError(`${count} elements where arraysize "${col.field.arraysize}" needs ${col.slice}`);
    return;
  }
  if (count % col.slice !== 0) throw new CellError(`${count} elements is not a whole number of ${col.slice}-element slices`);
  if (shape.maxLast !== null && count / col.slice > shape.maxLast) {
    throw new CellError(`${count} elements exceed arraysize "${col.field.arraysize}"`);
  }
}
