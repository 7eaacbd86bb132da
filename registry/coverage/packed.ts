/**
 * Many coverages held compactly: every coverage widened to order 12 at most (INDEX_ORDER, as the
 * planner and the sky index always used), its ranges kept as [start, end) pairs of cells of its
 * own maxOrder (every bound of a MOC lies on a cell of its maxOrder): in one Uint16Array when
 * that order is 6 or coarser (12·4^6 < 2^16), else in one Uint32Array (12·4^12 < 2^32); and what
 * the cone walks need per coverage (kind, maxOrder, bounding cap) in typed arrays
 * beside it. No object per coverage, so a million of them cost about 130 bytes each at order 5
 * and nothing for the garbage collector to trace.
 *
 * Each operation answers exactly as the same SMoc method would on parseMocAscii(text).degrade(12):
 * the cone walks are cone.ts's, reading the same bounds through {@link PackedCursor}. Stores are
 * built by packed-builder.ts.
 */
import { Cone, coveredInCone, touchesCone } from './cone.js';
import { MAX_ORDER, POW4, SAFE_ORDER } from './healpix.js';
import { SMoc } from './moc.js';
import { capMayTouch } from './packed-cap.js';
import { PACKED_ORDER } from './packed-parse.js';
import { FULL, FULL_END, NONE, PARTIAL, RangeLookup, type CellCover, type CellSpan, type Cover } from './ranges.js';

export { PACKED_ORDER } from './packed-parse.js';

/** A coverage's kind: unknown (null: treated as the whole sky by callers), empty, the whole sky, or a part. */
export const UNKNOWN = 0;
export const EMPTY = 1;
export const WHOLE = 2;
export const PART = 3;

/** Coverages of this order or coarser keep their bounds in the Uint16Array. */
export const NARROW_MAX_ORDER = 6;
/** Per stored order: one cell in order-24 units, the unit of CellSpan's hi part. */
const UNITS: readonly number[] = POW4.slice(0, PACKED_ORDER + 1).map((_, o) => POW4[SAFE_ORDER - o]);
const NO_BOUNDS16 = new Uint16Array(0);
/** From order-12 cells to order-29 cells, as a BigInt shift. */
export const BIG_SHIFT = BigInt(2 * (29 - PACKED_ORDER));
const ALL_CELLS = Number(FULL_END);

/** Bounds of coverages: cells of their stored order. */
export type Bounds = Uint16Array | Uint32Array;

/** Allocation-free CellCover over one coverage of a PackedCoverage: the bounds of RangeLookup, read from the stored pairs. */
export class PackedCursor implements CellCover {
  private ranges: Bounds = new Uint32Array(0);
  private from = 0;
  private count = 0;
  private unit = UNITS[PACKED_ORDER];

  /** Point at pairs [from, to) of `ranges` (indices of bounds), cells of order `order`; returns this. */
  at(ranges: Bounds, from: number, to: number, order: number): this {
    this.ranges = ranges;
    this.from = from;
    this.count = (to - from) >> 1;
    this.unit = UNITS[order];
    return this;
  }

  get size(): number {
    return this.count;
  }

  // Bound k as RangeLookup holds it: hi = order-24 cell, lo = order-29 offset, always 0 here.
  private hi(k: number): number {
    return this.ranges[this.from + k] * this.unit;
  }

  /** Index of the first range whose end lies after (h, l), or size when none does (RangeLookup.firstEndAfter with lo 0). */
  firstEndAfter(h: number, l: number): number {
    let a = 0;
    let b = this.count;
    while (a < b) {
      const m = (a + b) >> 1;
      const eh = this.hi(2 * m + 1);
      if (eh < h || (eh === h && 0 <= l)) a = m + 1;
      else b = m;
    }
    return a;
  }

  status(c: CellSpan): Cover {
    const i = this.firstEndAfter(c.sh, c.sl);
    if (i >= this.count) return NONE;
    const rh = this.hi(2 * i);
    if (rh > c.eh || (rh === c.eh && 0 >= c.el)) return NONE;
    const startsBefore = rh < c.sh || (rh === c.sh && 0 <= c.sl);
    if (!startsBefore) return PARTIAL;
    const eh = this.hi(2 * i + 1);
    return eh > c.eh || (eh === c.eh && 0 >= c.el) ? FULL : PARTIAL;
  }

  covered(c: CellSpan): number {
    let n = 0;
    for (let i = this.firstEndAfter(c.sh, c.sl); i < this.count; i++) {
      let sh = this.hi(2 * i);
      let sl = 0;
      if (sh > c.eh || (sh === c.eh && sl >= c.el)) break;
      if (sh < c.sh || (sh === c.sh && sl < c.sl)) {
        sh = c.sh;
        sl = c.sl;
      }
      let eh = this.hi(2 * i + 1);
      let el = 0;
      if (eh > c.eh || (eh === c.eh && el > c.el)) {
        eh = c.eh;
        el = c.el;
      }
      n += (eh - sh) * 1024 + (el - sl);
    }
    return n;
  }
}

/** The cursor of every packed walk: plans and index queries are synchronous, so one serves all. */
const cursor = new PackedCursor();

/** A bounding cap of a coverage: unit centre, and the margin mayTouch adds to a cone's radius. */
export interface PackedReach {
  readonly x: number;
  readonly y: number;
  readonly z: number;
  readonly margin: number;
}

/** Coverages 0…count-1, immutable once built (see PackedCoverageBuilder). */
export class PackedCoverage {
  /** Number of coverages. */
  readonly count: number;

  /** Per coverage: the order its bounds are stored at (≤ NARROW_MAX_ORDER: in `narrow`, else in `ranges`). */
  readonly orders: Uint8Array;

  /** @internal Built by PackedCoverageBuilder.finish(). */
  constructor(
    /** Bounds of the coverages stored at orders finer than NARROW_MAX_ORDER, pairs [start, end). */
    readonly ranges: Uint32Array,
    /** Per coverage: its first bound and the bound after its last, in its array (2 per coverage). */
    readonly span: Uint32Array,
    /** Per coverage: kind and maxOrder (2 per coverage). */
    readonly info: Uint8Array,
    /** Per coverage: the bounding cap's x, y, z, margin as float32 (NaN margin: no cap; packed-cap.ts) (4 per coverage). */
    readonly caps: Float32Array,
    /** Per coverage: the fingerprint of the text it was read from (packed-print.ts; 0, 0: none) (2 per coverage). */
    readonly prints: Uint32Array,
    /** Bounds of the coverages stored at NARROW_MAX_ORDER or coarser. */
    readonly narrow: Uint16Array = NO_BOUNDS16,
    /** Stored order per coverage; without it every coverage is at order 12 in `ranges`. */
    orders?: Uint8Array,
  ) {
    this.count = info.length >> 1;
    this.orders = orders ?? new Uint8Array(this.count).fill(PACKED_ORDER);
  }

  /** Number of bounds stored (both arrays; coverages read from one text share theirs). */
  get bounds(): number {
    return this.ranges.length + this.narrow.length;
  }

  /** The array holding coverage i's bounds. */
  private boundsOf(i: number): Bounds {
    return this.orders[i] <= NARROW_MAX_ORDER ? this.narrow : this.ranges;
  }

  /** Coverage i's bounds as order-12 cells, appended to `out` from `at`; returns the index after the last. */
  copyBounds12(i: number, out: Uint32Array, at: number): number {
    const r = this.boundsOf(i);
    const k = POW4[PACKED_ORDER - this.orders[i]];
    const to = this.span[2 * i + 1];
    for (let p = this.span[2 * i]; p < to; p++) out[at++] = r[p] * k;
    return at;
  }

  /** UNKNOWN, EMPTY, WHOLE or PART. */
  kind(i: number): number {
    return this.info[2 * i];
  }

  /** The declared resolution, at most 12. */
  maxOrder(i: number): number {
    return this.info[2 * i + 1];
  }

  /** The coverage's bounds, for the walks of the sky index (registry/coverage/packed-index.ts). */
  cursor(i: number): PackedCursor {
    return cursor.at(this.boundsOf(i), this.span[2 * i], this.span[2 * i + 1], this.orders[i]);
  }

  /**
   * False only when touchesCone is false too: the cone's centre lies farther than its radius plus
   * the cap's margin from the cap's centre, allowing for their float32 rounding (true when there is no cap). One distance test rules out
   * a far coverage before its ranges are walked.
   */
  mayTouch(i: number, cone: Cone): boolean {
    return capMayTouch(this.caps, i, cone);
  }

  /** SMoc.intersectsConeOf for a known coverage (unknown: false, as callers decide what unknown means). */
  touchesCone(i: number, cone: Cone): boolean {
    const kind = this.info[2 * i];
    if (kind === WHOLE) return true;
    if (kind !== PART) return false;
    return touchesCone(this.cursor(i), this.info[2 * i + 1], cone);
  }

  /** SMoc.coneOverlapFractionOf for a known coverage (unknown: 0). */
  coneFraction(i: number, cone: Cone): number {
    const kind = this.info[2 * i];
    if (kind === WHOLE) return cone.skyFraction();
    if (kind !== PART) return 0;
    const f = coveredInCone(this.cursor(i), cone, this.orders[i]) / this.cellCount(i);
    return Math.min(1, Math.max(0, f));
  }

  /** SMoc.skyFraction for a known coverage. */
  skyFraction(i: number): number {
    return this.cellCount(i) / ALL_CELLS;
  }

  /**
   * Order-29 cells covered, summed from the bounds rather than stored (8 bytes a coverage, 8 MB
   * at a million): exact, an integer below 2^28 times a power of two, as the builder counted it.
   */
  cellCount(i: number): number {
    const r = this.boundsOf(i);
    const to = this.span[2 * i + 1];
    let n = 0;
    for (let p = this.span[2 * i]; p < to; p += 2) n += r[p + 1] - r[p];
    return n * POW4[MAX_ORDER - this.orders[i]];
  }

  /** SMoc.intersects(area) for a known coverage. */
  intersects(i: number, area: RangeLookup): boolean {
    return this.overlap(i, area, true) !== 0;
  }

  /** moc.intersection(area).skyFraction() for a known coverage. */
  intersectionFraction(i: number, area: RangeLookup): number {
    return this.overlap(i, area, false) / ALL_CELLS;
  }

  /**
   * Order-29 cells in both this coverage and `area`, or 1 at the first shared cell when `any`.
   * Bounds compare as (order-24 cell, order-29 offset) pairs; the count is summed in those two
   * parts, each exact, and joined in one rounding, as Number() rounds the exact BigInt count.
   */
  private overlap(i: number, area: RangeLookup, any: boolean): number {
    const r = this.boundsOf(i);
    const unit = UNITS[this.orders[i]];
    const end = this.span[2 * i + 1];
    const ahi = area.hi;
    const alo = area.lo;
    let p = this.span[2 * i];
    let q = 0;
    let his = 0;
    let los = 0;
    while (p < end && q < ahi.length) {
      const ps = r[p] * unit;
      const pe = r[p + 1] * unit;
      // Start: the later of the two starts; end: the earlier of the two ends.
      let sh = ps;
      let sl = 0;
      if (ahi[q] > sh || (ahi[q] === sh && alo[q] > sl)) {
        sh = ahi[q];
        sl = alo[q];
      }
      let eh = pe;
      let el = 0;
      const qeh = ahi[q + 1];
      const qel = alo[q + 1];
      const areaEndsFirst = qeh < eh || (qeh === eh && qel < el);
      if (areaEndsFirst) {
        eh = qeh;
        el = qel;
      }
      if (sh < eh || (sh === eh && sl < el)) {
        if (any) return 1;
        his += eh - sh;
        los += el - sl;
      }
      if (areaEndsFirst) q += 2;
      else p += 2;
    }
    return his * 1024 + los;
  }

  /** The coverage as an SMoc (null when unknown): equal to parseMocAscii(text).degrade(12). */
  toSMoc(i: number): SMoc | null {
    const kind = this.info[2 * i];
    if (kind === UNKNOWN) return null;
    const from = this.span[2 * i];
    const to = this.span[2 * i + 1];
    const r = this.boundsOf(i);
    const shift = BigInt(2 * (29 - this.orders[i]));
    const big = new BigInt64Array(to - from);
    for (let k = from; k < to; k++) big[k - from] = BigInt(r[k]) << shift;
    return SMoc.fromRanges(big, this.info[2 * i + 1]);
  }

  /**
   * Whether coverage i and coverage j of `other` are the same coverage: read from the same text
   * (the same print, as buildSite's lending trusts), or both unknown.
   */
  sameSource(i: number, other: PackedCoverage, j: number): boolean {
    if (this.kind(i) === UNKNOWN || other.kind(j) === UNKNOWN) return this.kind(i) === other.kind(j);
    return other.readFrom(j, this.prints[2 * i], this.prints[2 * i + 1]);
  }

  /** Whether coverage i was read from a text whose print is (hi, lo), as packed-print.ts makes them. */
  readFrom(i: number, hi: number, lo: number): boolean {
    return this.prints[2 * i + 1] === lo && this.prints[2 * i] === hi && lo !== 0;
  }

  /** The bounding cap, or null when there is none (unknown, empty, whole sky, or no useful centre). */
  reach(i: number): PackedReach | null {
    const c = this.caps;
    if (c[4 * i + 3] !== c[4 * i + 3]) return null;
    return Object.freeze({ x: c[4 * i], y: c[4 * i + 1], z: c[4 * i + 2], margin: c[4 * i + 3] });
  }

  /** The cells of `order` (≤ 12) the coverage touches, ascending, into `out`; false once there are more than `limit`. */
  cellsAt(i: number, order: number, limit: number, out: number[]): boolean {
    return cellsOf(this.boundsOf(i), this.span[2 * i], this.span[2 * i + 1], this.orders[i], order, limit, out);
  }
}

/**
 * The cells of `order` (≤ 12) that bounds [from, to) of `ranges`, cells of order `stored`, touch,
 * ascending, into `out` (cleared first); false once there are more than `limit` (cap.ts's cellsAt).
 */
export function cellsOf(ranges: Bounds, from: number, to: number, stored: number, order: number, limit: number, out: number[]): boolean {
  out.length = 0;
  // Bounds are brought to order 12 first (exact: below 2^28), then to `order`.
  const up = POW4[PACKED_ORDER - stored];
  const k = POW4[PACKED_ORDER - order];
  for (let p = from; p < to; p += 2) {
    const last = Math.ceil((ranges[p + 1] * up) / k);
    // A cell shared with the previous range is already listed.
    for (let c = Math.max(Math.floor((ranges[p] * up) / k), out.length > 0 ? out[out.length - 1] + 1 : 0); c < last; c++) {
      if (out.push(c) > limit) return false;
    }
  }
  return true;
}
