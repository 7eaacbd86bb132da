import type { Row } from './types.js';
import { type Column, T } from './fields.js';
import { doubleText, float32Text } from './real-text.js';
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

/** Escapes character data; CR is written as a reference so XML line-end handling keeps it. */
export function escapeText(s: string): string {
  if (!/[&<>\r]/.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** Escapes an attribute value (double-quoted); tab, LF and CR survive attribute normalisation. */
export function escapeAttr(s: string): string {
  if (!/[&<>"\t\n\r]/.test(s)) return s;
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

/** One TR element for `row`; `index` (0-based) is for error messages. */
export function formatTableDataRow(cols: Column[], row: Row, index: number): string {
  checkRowShape(cols, row, index);
  let out = '<TR>';
  for (let c = 0; c < cols.length; c++) {
    const v = row[c];
    if (v === null || v === undefined) {
      out += '<TD/>';
      continue;
    }
    const col = cols[c];
    const text = formatTableDataCell(col, v, index);
    out += text === '' ? '<TD/>' : `<TD>${col.isString ? escapeText(text) : text}</TD>`;
  }
  return `${out}</TR>\n`;
}

/** The TD text of a non-null value, unescaped. Empty strings and empty arrays give "" (read back as null). */
export function formatTableDataCell(col: Column, v: unknown, row: number): string {
  if (col.isString) {
    if (col.stringArray) {
      const width = col.strLen;
      // Fixed-width elements are padded with blanks so the reader can split them again.
      return stringsOf(col, v, row)
        .map((s) => s + ' '.repeat(Math.max(0, width - s.length)))
        .join('');
    }
    return toStr(col, v, row, stringWidth(col));
  }
  if (col.isArray) {
    const items = elementsOf(col, v, row);
    if (col.type === T.bit) return items.map((x) => (toBool(col, x, row) ? '1' : '0')).join('');
    const parts: string[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) parts[i] = formatElement(col, items[i], row);
    return parts.join(' ');
  }
  return formatScalar(col, v, row);
}

function formatScalar(col: Column, v: unknown, row: number): string {
  switch (col.type) {
    case T.double:
    case T.float: {
      const x = toReal(col, v, row);
      // NaN is the null of floating point; an empty TD says so.
      return Number.isNaN(x) ? '' : formatReal(col, x);
    }
    case T.unsignedByte:
    case T.short:
    case T.int:
      return String(toInt(col, v, row));
    case T.long:
      return String(toLong(col, v, row));
    case T.boolean:
      return toBool(col, v, row) ? 'T' : 'F';
    case T.bit:
      return toBool(col, v, row) ? '1' : '0';
    case T.floatComplex:
    case T.doubleComplex: {
      const [re, im] = toComplex(col, v, row);
      return `${formatReal(col, re)} ${formatReal(col, im)}`;
    }
    default:
      throw invalid(col, row, 'unexpected datatype');
  }
}

function formatElement(col: Column, v: unknown, row: number): string {
  if (v === null || v === undefined) {
    switch (col.type) {
      case T.float:
      case T.double:
        return 'NaN';
      case T.floatComplex:
      case T.doubleComplex:
        return 'NaN NaN';
      case T.boolean:
        return '?';
      default:
        return String(nullElement(col, row));
    }
  }
  return formatScalar(col, v, row) || 'NaN';
}

/** Shortest text that reads back as the same value: float32 for float, float64 otherwise. */
export function formatReal(col: Column, x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return col.type === T.float || col.type === T.floatComplex ? float32Text(x) : doubleText(x);
}
