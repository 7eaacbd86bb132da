/**
 * Fingerprints of MOC texts, so a store rebuilt after a publish can tell which coverages did not
 * change and take them from the previous store instead of reading their text again (a harvest
 * republishes a site's hundred MOCs with, typically, none or one changed).
 *
 * A fingerprint is two 32-bit hashes of the text (FNV-1a and a multiply-rotate hash, each mixed
 * with the length), 63 bits in all: the low bit of the second is always set, so no text's print
 * is (0, 0), the print of a coverage not read from a text. Prints are only compared between one
 * replica's old and new text, where an accidental match has odds of 2^-63; a site that crafted
 * one (the hashes are not cryptographic) would only keep its own old coverage in the planner.
 */

/** The two halves of the last print made by {@link printText} (read at once; the next call overwrites them). */
export const lastPrint = { hi: 0, lo: 0 };

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fingerprint `text` into {@link lastPrint}. */
export function printText(text: string): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b + c, 0x5bd1e995);
    b = (b << 13) | (b >>> 19);
  }
  lastPrint.hi = fmix(a ^ n);
  lastPrint.lo = (fmix(b ^ Math.imul(n, 0x27d4eb2d)) | 1) >>> 0;
}
