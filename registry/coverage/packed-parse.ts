/**
 * MOC 2.0 ASCII read straight into order-12 ranges, for building many coverages at once (the
 * planner's snapshot parses one MOC per replica: a million at federation scale).
 *
 * parseMocAscii builds order-29 BigInt ranges, merges them and then degrade() widens them to
 * order 12; here cells of orders 0-24 are read as doubles (exact there) and widened at once. The
 * result is the same set: widening every range outward to whole order-12 cells and merging them
 * gives what merging first and widening after gives. Anything out of the ordinary (a syntax
 * error, cells finer than order 24) is left to parseMocAscii, which reads it, or throws the
 * error it always throws, so behaviour on bad input is the full parser's.
 */
import { POW4 } from './healpix.js';

/** The order coverage is read at: finer cells are widened to it (INDEX_ORDER in limits.ts). */
export const PACKED_ORDER = 12;

/** Finest order read here; order-24 cell indices are still exact doubles. */
const FAST_MAX_ORDER = 24;
/** Longest number read: 16 digits hold every order-24 cell index (below 12·4^24 ≈ 3.4e15). */
const MAX_DIGITS = 16;

/** Where the ranges go: [start, end) in order-12 cells, ascending, merged. */
export interface RangeSink {
  push(start: number, end: number): void;
}

/** Per order: [a, b + 1) pairs in that order's own cells, as read (counts[o] values); then the merged result. */
const lists: Float64Array[] = Array.from({ length: FAST_MAX_ORDER + 1 }, () => new Float64Array(64));
const counts = new Int32Array(FAST_MAX_ORDER + 1);
const lastEnd = new Float64Array(FAST_MAX_ORDER + 1);
let merged: number[] = [];
let spare: number[] = [];

function append(o: number, a: number, end: number): void {
  let list = lists[o];
  const n = counts[o];
  if (n > 0 && list[n - 1] === a) {
    list[n - 1] = end;
    return;
  }
  if (n + 2 > list.length) {
    const grown = new Float64Array(2 * list.length);
    grown.set(list);
    lists[o] = list = grown;
  }
  list[n] = a;
  list[n + 1] = end;
  counts[o] = n + 2;
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Read `text` into `out` as order-12 ranges and return the declared maxOrder (0 for the empty
 * string), or -1 when the text needs parseMocAscii (nothing is written then). Every check of
 * parseMocAscii is made here too, so a text read here is one it reads without error.
 */
export function parseMocFast(text: string, out: RangeSink): number {
  counts.fill(0);
  lastEnd.fill(0);
  const n = text.length;
  let i = 0;
  let order = -1;
  let maxOrder = 0;
  let afterSlash = false;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      afterSlash = false;
      i++;
      continue;
    }
    if (!isDigit(c)) return -1;
    let start = i;
    let a = 0;
    while (i < n && isDigit(text.charCodeAt(i))) a = a * 10 + (text.charCodeAt(i++) - 48);
    if (i - start > MAX_DIGITS) return -1;
    if (i < n && text.charCodeAt(i) === 47) {
      // An order token "o/": at most two digits, and separated from a previous order token.
      if (afterSlash || i - start > 2 || a > FAST_MAX_ORDER) return -1;
      order = a;
      if (a > maxOrder) maxOrder = a;
      i++;
      afterSlash = true;
      continue;
    }
    afterSlash = false;
    let b = a;
    if (i < n && text.charCodeAt(i) === 45) {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) return -1;
      start = i;
      b = 0;
      while (i < n && isDigit(text.charCodeAt(i))) b = b * 10 + (text.charCodeAt(i++) - 48);
      if (i - start > MAX_DIGITS) return -1;
    }
    if (i < n && !isSpace(text.charCodeAt(i))) return -1;
    if (order < 0) return -1;
    const maxCell = 12 * POW4[order] - 1;
    if (a > maxCell || b > maxCell || b < a) return -1;
    // Cells of one order ascend (parseMocAscii's rule, repeated 0 included).
    if (a < lastEnd[order] || (a === 0 && counts[order] > 0)) return -1;
    append(order, a, b + 1);
    lastEnd[order] = b + 1;
  }
  merged.length = 0;
  for (let o = 0; o <= FAST_MAX_ORDER; o++) if (counts[o] > 0) mergeOrder(o);
  for (let k = 0; k < merged.length; k += 2) out.push(merged[k], merged[k + 1]);
  return maxOrder;
}

/** Union the cells of order `o`, widened to order-12 cells, into `merged` (one pass merging two sorted lists). */
function mergeOrder(o: number): void {
  const list = lists[o];
  const count = counts[o];
  // Exact in doubles: products stay below 2^28, and quotients by powers of two are exact.
  const up = o <= PACKED_ORDER ? POW4[PACKED_ORDER - o] : 1;
  const down = o <= PACKED_ORDER ? 1 : POW4[o - PACKED_ORDER];
  const into = spare;
  into.length = 0;
  let i = 0;
  let j = 0;
  while (i < merged.length || j < count) {
    const ls = j < count ? Math.floor(list[j] / down) * up : Infinity;
    let s: number;
    let e: number;
    if (i < merged.length && merged[i] <= ls) {
      s = merged[i];
      e = merged[i + 1];
      i += 2;
    } else {
      s = ls;
      e = Math.ceil(list[j + 1] / down) * up;
      j += 2;
    }
    // Ranges arrive by ascending start: one overlapping or touching the last is merged into it.
    const n = into.length;
    if (n > 0 && s <= into[n - 1]) {
      if (e > into[n - 1]) into[n - 1] = e;
    } else into.push(s, e);
  }
  spare = merged;
  merged = into;
}
