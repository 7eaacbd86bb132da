/**
 * The string rules discovery SQL follows, reproduced in memory: ORDER BY id COLLATE "C" (UTF-8
 * byte order) and ILIKE '%text%' with escaped wildcards (a case-insensitive substring). Case is
 * folded for ASCII letters only, which is what every database locale agrees on; the few
 * characters that a Unicode locale folds to ASCII (U+0130 and U+212A) are reported, so callers
 * can leave a search touching them to SQL.
 */

/** UTF-16 code unit → a key that orders like the code point (and so like UTF-8 bytes). */
function unitKey(u: number): number {
  // Surrogates (code points above U+FFFF) sort after U+E000–U+FFFF in code point order.
  if (u >= 0xd800 && u <= 0xdfff) return u + 0x2000;
  if (u >= 0xe000) return u - 0x800;
  return u;
}

/** Compare two strings as PostgreSQL's "C" collation does (by UTF-8 bytes). */
export function compareC(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitKey(x) - unitKey(y);
  }
  return a.length - b.length;
}

/** `s` with ASCII A–Z lower-cased and everything else kept. */
export function foldAscii(s: string): string {
  return /[A-Z]/.test(s) ? s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32)) : s;
}

/** Whether a Unicode locale might fold a character of `s` to an ASCII letter where the C locale would not. */
export function foldsToAscii(s: string): boolean {
  return /[\u0130\u212a]/.test(s);
}

/** Whether `s` is printable-safe ASCII (no NUL, which PostgreSQL text cannot hold). */
export function plainAscii(s: string): boolean {
  return /^[\u0001-\u007f]*$/.test(s);
}
