/**
 * Exact sets of order-29 HEALPix NESTED cells as sorted half-open ranges.
 *
 * Order-29 indices reach 12·4^29 ≈ 3.5e18, past 2^53, so the canonical form is a BigInt64Array
 * [s0, e0, s1, e1, …] (sorted, disjoint, never adjacent). Geometry needs fast lookups without
 * BigInt allocation, so {@link RangeLookup} re-encodes every bound exactly as a pair
 * (hi = bound >> 10, a double; lo = bound & 1023), i.e. order-24 cell plus order-29 offset.
 */
import { POW4, SAFE_ORDER } from './healpix.js';

/** Flat [start, end) pairs of order-29 indices; sorted, disjoint and non-adjacent. */
export type Ranges = BigInt64Array;

/** Number of order-29 cells on the sphere, 12·4^29. */
export const FULL_END = 12n << 58n;

/** The empty range set. */
export const NO_RANGES: Ranges = new BigInt64Array(0);

/** Collects ranges given in ascending start order, merging overlaps and adjacency on the fly. */
export class RangeBuilder {
  private buf: bigint[] = [];
  private hasOpen = false;
  private s = 0n;
  private e = 0n;

  /** Add [s, e); s must not be below the previous start. */
  push(s: bigint, e: bigint): void {
    if (e <= s) return;
    if (this.hasOpen && s <= this.e) {
      if (e > this.e) this.e = e;
      return;
    }
    if (this.hasOpen) this.buf.push(this.s, this.e);
    this.s = s;
    this.e = e;
    this.hasOpen = true;
  }

  /** The collected ranges. */
  finish(): Ranges {
    if (this.hasOpen) this.buf.push(this.s, this.e);
    this.hasOpen = false;
    const out = BigInt64Array.from(this.buf);
    this.buf = [];
    return out;
  }
}

/** Set union of two range sets. */
export function unionRanges(a: Ranges, b: Ranges): Ranges {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new RangeBuilder();
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i] <= b[j])) {
      out.push(a[i], a[i + 1]);
      i += 2;
    } else {
      out.push(b[j], b[j + 1]);
      j += 2;
    }
  }
  return out.finish();
}

/** Union of many range sets, merged pairwise so the cost is n·log(k), not n·k. */
export function unionAll(sets: Ranges[]): Ranges {
  let level = sets.filter((s) => s.length > 0);
  if (level.length === 0) return NO_RANGES;
  while (level.length > 1) {
    const next: Ranges[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? unionRanges(level[i], level[i + 1]) : level[i]);
    level = next;
  }
  return level[0];
}

/** Set intersection of two range sets. */
export function intersectRanges(a: Ranges, b: Ranges): Ranges {
  const out: bigint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const s = a[i] > b[j] ? a[i] : b[j];
    const ae = a[i + 1];
    const be = b[j + 1];
    const e = ae < be ? ae : be;
    if (s < e) out.push(s, e);
    if (ae < be) i += 2;
    else j += 2;
  }
  return BigInt64Array.from(out);
}

/** Whether two range sets share at least one cell, without building the intersection. */
export function rangesOverlap(a: Ranges, b: Ranges): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ae = a[i + 1];
    const be = b[j + 1];
    if ((a[i] > b[j] ? a[i] : b[j]) < (ae < be ? ae : be)) return true;
    if (ae < be) i += 2;
    else j += 2;
  }
  return false;
}

/** Element-wise equality. */
export function rangesEqual(a: Ranges, b: Ranges): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Widen every range outward to whole cells of `order` (a superset). */
export function degradeRanges(r: Ranges, order: number): Ranges {
  const size = 1n << BigInt(2 * (29 - order));
  const out = new RangeBuilder();
  for (let i = 0; i < r.length; i += 2) {
    const s = (r[i] / size) * size;
    const e = ((r[i + 1] + size - 1n) / size) * size;
    out.push(s, e);
  }
  return out.finish();
}

/** Number of order-29 cells covered. */
export function countCells(r: Ranges): bigint {
  let n = 0n;
  for (let i = 0; i < r.length; i += 2) n += r[i + 1] - r[i];
  return n;
}

/** Whether every bound is a multiple of the cell size at `order` (the MOC's declared resolution). */
export function alignedTo(r: Ranges, order: number): boolean {
  const size = 1n << BigInt(2 * (29 - order));
  for (let i = 0; i < r.length; i++) if (r[i] % size !== 0n) return false;
  return true;
}

/** Pair form (hi, lo) of the start and end of a cell given by its order-24 anchor and order-29 offset. */
export interface CellSpan {
  sh: number;
  sl: number;
  eh: number;
  el: number;
}

/** Span of the cell whose start is (s24, s5) at `order`. */
export function cellSpan(order: number, s24: number, s5: number, out: CellSpan): CellSpan {
  out.sh = s24;
  out.sl = s5;
  if (order <= SAFE_ORDER) {
    out.eh = s24 + POW4[SAFE_ORDER - order];
    out.el = 0;
  } else {
    const e = s5 + POW4[29 - order];
    if (e === 1024) {
      out.eh = s24 + 1;
      out.el = 0;
    } else {
      out.eh = s24;
      out.el = e;
    }
  }
  return out;
}

/** How much of a cell a range set covers: 0 none, 1 part, 2 all. */
export type Cover = 0 | 1 | 2;
/** Cover value: no cell of the span is in the set. */
export const NONE = 0;
/** Cover value: some but not all of the span is in the set. */
export const PARTIAL = 1;
/** Cover value: the whole span is in the set. */
export const FULL = 2;

/**
 * What the cone walks (cone.ts) read of a range set: how much of a cell it covers, and how many
 * order-29 cells of it. RangeLookup answers for one MOC; packed.ts answers for coverage held in
 * shared typed arrays with the same numbers, so either gives the same walk.
 */
export interface CellCover {
  /** Number of ranges. */
  readonly size: number;
  /** How much of the span is covered. */
  status(c: CellSpan): Cover;
  /** Number of order-29 cells of the span that are covered (a double). */
  covered(c: CellSpan): number;
}

/** Allocation-free read access to a range set for geometric walks (see the module comment). */
export class RangeLookup implements CellCover {
  /** Bound i as (hi[i], lo[i]); even i are starts, odd i ends. */
  readonly hi: Float64Array;
  readonly lo: Uint16Array;

  constructor(r: Ranges) {
    this.hi = new Float64Array(r.length);
    this.lo = new Uint16Array(r.length);
    for (let i = 0; i < r.length; i++) {
      this.hi[i] = Number(r[i] >> 10n);
      this.lo[i] = Number(r[i] & 1023n);
    }
  }

  /** Number of ranges. */
  get size(): number {
    return this.hi.length >> 1;
  }

  /** Index of the first range whose end lies after (h, l), or size when none does. */
  firstEndAfter(h: number, l: number): number {
    const hi = this.hi;
    const lo = this.lo;
    let a = 0;
    let b = hi.length >> 1;
    while (a < b) {
      const m = (a + b) >> 1;
      const eh = hi[2 * m + 1];
      if (eh < h || (eh === h && lo[2 * m + 1] <= l)) a = m + 1;
      else b = m;
    }
    return a;
  }

  /** How much of the span [s, e) is covered. */
  status(c: CellSpan): Cover {
    const i = this.firstEndAfter(c.sh, c.sl);
    if (i >= this.hi.length >> 1) return NONE;
    const rh = this.hi[2 * i];
    const rl = this.lo[2 * i];
    if (rh > c.eh || (rh === c.eh && rl >= c.el)) return NONE;
    const startsBefore = rh < c.sh || (rh === c.sh && rl <= c.sl);
    if (!startsBefore) return PARTIAL;
    const eh = this.hi[2 * i + 1];
    const el = this.lo[2 * i + 1];
    return eh > c.eh || (eh === c.eh && el >= c.el) ? FULL : PARTIAL;
  }

  /** Number of order-29 cells of the span that are covered (a double: exact enough for area ratios). */
  covered(c: CellSpan): number {
    let n = 0;
    const hi = this.hi;
    const lo = this.lo;
    for (let i = this.firstEndAfter(c.sh, c.sl); 2 * i < hi.length; i++) {
      let sh = hi[2 * i];
      let sl = lo[2 * i];
      if (sh > c.eh || (sh === c.eh && sl >= c.el)) break;
      if (sh < c.sh || (sh === c.sh && sl < c.sl)) {
        sh = c.sh;
        sl = c.sl;
      }
      let eh = hi[2 * i + 1];
      let el = lo[2 * i + 1];
      if (eh > c.eh || (eh === c.eh && el > c.el)) {
        eh = c.eh;
        el = c.el;
      }
      n += (eh - sh) * 1024 + (el - sl);
    }
    return n;
  }

  /** Whether the order-29 cell at (h, l) is covered. */
  containsPos(h: number, l: number): boolean {
    const i = this.firstEndAfter(h, l);
    if (i >= this.hi.length >> 1) return false;
    const sh = this.hi[2 * i];
    return sh < h || (sh === h && this.lo[2 * i] <= l);
  }
}
