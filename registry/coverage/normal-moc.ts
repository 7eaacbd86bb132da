/**
 * Recognise a MOC 2.0 ASCII text that is already in the normal form `SMoc.toAscii` prints, and
 * give its sky fraction, in doubles. Sites publish their coverage normalised (our own tools and
 * MOCPy both print it so); validation then need not parse it into BigInt ranges and print it back,
 * which was half the CPU of validating a document (issue 13, point 3). Anything else (another
 * spelling, cells finer than order 24, a syntax error) gets `undefined`, and the caller parses it
 * with parseMocAscii, whose answer and errors stay the reference.
 */
import { MAX_ORDER, POW4, cellCount } from './healpix.js';
import type { MocLimits } from './limits.js';
import { FULL_END } from './ranges.js';

/** Finest order read here: order-24 cell indices are exact doubles. */
const FAST_MAX_ORDER = 24;
/** The sky in order-29 cells (exact as a double), as SMoc.skyFraction divides by it. */
const SKY_29 = Number(FULL_END);
const SPACE = 32;
const SLASH = 47;
const DASH = 45;
const C0 = 48;
const C9 = 57;

/**
 * The sky fraction of `text` when it is a MOC that parseMocAscii(text, limits) reads and whose
 * toAscii() is `text` itself (and its skyFraction() this number); otherwise undefined.
 */
export function normalMocFraction(text: string, limits: MocLimits): number | undefined {
  const n = text.length;
  if (n === 0 || n > limits.maxChars) return undefined;
  // Each cell token as [start, end) in order-24 cells, with its order and cells, for the checks below.
  const starts: number[] = [];
  const ends: number[] = [];
  const orders: number[] = [];
  const firsts: number[] = [];
  const lasts: number[] = [];
  let order = -1;
  let cellsInOrder = 0;
  let lastCell = -2;
  let i = 0;
  for (;;) {
    // One token: "o/" or "a" or "a-b", digits without leading zeros; a space before it only after a cell.
    const a = digits(text, i);
    if (a === undefined) return undefined;
    i = a.next;
    if (i < n && text.charCodeAt(i) === SLASH) {
      // Orders ascend; one with no cells is printed only last, as the MOC's maxOrder.
      if (a.value > FAST_MAX_ORDER || a.value <= order || (order >= 0 && cellsInOrder === 0)) return undefined;
      order = a.value;
      cellsInOrder = 0;
      lastCell = -2;
      i++;
      // The order's first cell follows its slash directly ("3/53 122 4/119").
      if (i === n) break;
      continue;
    } else {
      if (order < 0) return undefined;
      let b = a.value;
      if (i < n && text.charCodeAt(i) === DASH) {
        const second = digits(text, i + 1);
        if (second === undefined || second.value <= a.value) return undefined;
        b = second.value;
        i = second.next;
      }
      // Ascending, and apart from the run before (a run is printed whole).
      if (a.value <= lastCell + 1 || b >= cellCount(order) || starts.length >= limits.maxCells) return undefined;
      const size = POW4[FAST_MAX_ORDER - order];
      starts.push(a.value * size);
      ends.push((b + 1) * size);
      orders.push(order);
      firsts.push(a.value);
      lasts.push(b);
      lastCell = b;
      cellsInOrder++;
    }
    if (i === n) break;
    // Tokens are apart by exactly one space, with none at either end.
    if (text.charCodeAt(i) !== SPACE || i + 1 === n) return undefined;
    i++;
  }
  const union = disjointUnion(starts, ends);
  if (union === undefined) return undefined;
  // Coarsest cells: no cell's parent lies wholly in the MOC (its four children would be printed as it).
  for (let t = 0; t < orders.length; t++) {
    const o = orders[t];
    if (o === 0) continue;
    const parentSize = POW4[FAST_MAX_ORDER - o + 1];
    for (let p = Math.floor(firsts[t] / 4); p <= Math.floor(lasts[t] / 4); p++) {
      if (covers(union, p * parentSize, (p + 1) * parentSize)) return undefined;
    }
  }
  let cells = 0;
  for (let k = 0; k < union.length; k += 2) cells += union[k + 1] - union[k];
  // As SMoc.skyFraction computes it: order-29 cells (an exact power-of-two scaling) over the sky's.
  return (cells * POW4[MAX_ORDER - FAST_MAX_ORDER]) / SKY_29;
}

/** The decimal number at `i` (no sign, no leading zero, at most 16 digits) and where it ends. */
function digits(text: string, i: number): { value: number; next: number } | undefined {
  const start = i;
  let value = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < C0 || c > C9) break;
    value = value * 10 + (c - C0);
    i++;
  }
  const length = i - start;
  if (length === 0 || length > 16 || (length > 1 && text.charCodeAt(start) === C0)) return undefined;
  return { value, next: i };
}

/** The merged union of the [start, end) ranges as flat pairs, or undefined when two overlap. */
function disjointUnion(starts: readonly number[], ends: readonly number[]): number[] | undefined {
  const order = starts.map((_s, k) => k).sort((x, y) => starts[x] - starts[y]);
  const out: number[] = [];
  for (const k of order) {
    const end = out.length - 1;
    if (out.length > 0 && starts[k] < out[end]) return undefined;
    if (out.length > 0 && starts[k] === out[end]) out[end] = ends[k];
    else out.push(starts[k], ends[k]);
  }
  return out;
}

/** Whether [start, end) lies wholly within one range of the merged `union`. */
function covers(union: readonly number[], start: number, end: number): boolean {
  let lo = 0;
  let hi = union.length / 2;
  // The last range starting at or before `start`.
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (union[2 * mid] <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && union[2 * (lo - 1) + 1] >= end;
}
