/** Lenient readers for simple-typed XML values (xs:token, xs:boolean, xs:integer). */
import type { XmlElement } from './tree.js';

/** Trimmed text of an element; undefined when absent, xsi:nil or empty. */
export function textOf(el: XmlElement | undefined): string | undefined {
  if (el === undefined || el.isNil) return undefined;
  const t = el.trimmedText;
  return t === '' ? undefined : t;
}

/** xs:boolean ("true", "false", "1", "0", any case and padding); undefined otherwise. */
export function parseXsdBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return undefined;
}

/** xs:integer as a safe JS number; undefined for anything else (placeholders, decimals, overflow). */
export function parseXsdInteger(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}
