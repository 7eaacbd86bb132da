/**
 * The sky index of index.ts (CoverageIndex) over packed coverage: items are coverages of
 * PackedCoverage stores, filed by integer id, with bucket lists in Int32Arrays. Nothing per item
 * is an object, so an index of a million replicas costs tens of megabytes, not gigabytes, and the
 * garbage collector has nothing in it to trace.
 *
 * Filing and the query walk are CoverageIndex's (see its module comment): results equal
 * `kind is UNKNOWN or WHOLE, or coverage.touchesCone(i, cone)` for every item; empty coverage is
 * found by no cone. The pruning cap is the coverage's own (PackedCoverage.mayTouch).
 */
import { Cone, touchesBelow } from './cone.js';
import { MAX_PIXRAD, POW4, SAFE_ORDER, cellCount, centerTable, chord2 } from './healpix.js';
import { EMPTY, UNKNOWN, WHOLE, type PackedCoverage } from './packed.js';
import { FULL, PARTIAL, cellSpan, type CellSpan, type RangeLookup } from './ranges.js';

/** Default finest bucket order (as CoverageIndex). */
const BUCKET_ORDER = 7;
/** Most bucket cells one coverage may occupy before it is filed at a coarser order. */
const MAX_BUCKET_CELLS = 48;
/** bucketOf values besides a bucket order. */
const EVERYWHERE = -1;
const NOWHERE = -2;
const FREE = -3;
/** Removed, with entries still in some buckets: its id is reused once the last one is purged. */
const DEAD = -4;

/**
 * A growable Int32Array list: the ids (id·2 + 1 when the coverage covers the whole cell) filed in
 * one bucket cell, `dead` of them removed but not yet purged.
 */
interface Bucket {
  ids: Int32Array;
  n: number;
  dead: number;
}

/** Sky-coverage index over coverages of PackedCoverage stores, by integer id. */
export class PackedSkyIndex {
  private sources: (PackedCoverage | undefined)[] = [];
  private items = new Int32Array(64);
  private bucketOf = new Int8Array(64).fill(FREE);
  /** Position in `everywhere` of an EVERYWHERE id. */
  private everywhereAt = new Int32Array(64);
  /** Per DEAD id: its entries not yet purged from their buckets. */
  private unpurged = new Int32Array(64);
  private readonly everywhere: number[] = [];
  private readonly freeIds: number[] = [];
  private live = 0;
  private readonly bucketOrder: number;
  private readonly buckets: (Bucket | undefined)[][];
  private readonly perOrder: number[];
  private readonly centers: Float64Array[];
  private stamp = new Int32Array(64);
  private epoch = 0;
  private readonly cells: number[] = [];
  private readonly span: CellSpan = { sh: 0, sl: 0, eh: 0, el: 0 };
  // The query in progress.
  private cone: Cone | undefined;
  private top = -1;
  private out: number[] = [];
  private readonly exploreT: number[] = [];

  /** `bucketOrder` (0–8, default 7) trades memory and insert time for fewer candidates per query. */
  constructor(options: { bucketOrder?: number } = {}) {
    const order = options.bucketOrder ?? BUCKET_ORDER;
    if (!Number.isInteger(order) || order < 0 || order > 8) throw new RangeError(`bucketOrder must be an integer 0-8 (got ${String(order)})`);
    this.bucketOrder = order;
    this.buckets = Array.from({ length: order + 1 }, (_, o) => new Array<Bucket | undefined>(cellCount(o)));
    this.perOrder = new Array<number>(order + 1).fill(0);
    this.centers = Array.from({ length: order + 1 }, (_, o) => centerTable(o));
  }

  /** Number of items held. */
  get size(): number {
    return this.live;
  }

  /** The store and number of the coverage filed as `id`. */
  source(id: number): PackedCoverage {
    const s = this.sources[id];
    if (s === undefined || this.bucketOf[id] === FREE) throw new RangeError(`no coverage is indexed as id ${id}`);
    return s;
  }

  /** The coverage's number in its store. */
  item(id: number): number {
    this.source(id);
    return this.items[id];
  }

  /** File coverage `i` of `coverage`; returns its id (ids of removed items are reused). */
  add(coverage: PackedCoverage, i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= coverage.count) throw new RangeError(`coverage ${String(i)} is not in the store (0-${coverage.count - 1})`);
    const id = this.freeIds.pop() ?? this.sources.length;
    if (id === this.sources.length) {
      this.sources.push(undefined);
      this.grow(id + 1);
    }
    this.sources[id] = coverage;
    this.items[id] = i;
    this.live++;
    const kind = coverage.kind(i);
    if (kind === UNKNOWN || kind === WHOLE) {
      this.bucketOf[id] = EVERYWHERE;
      this.everywhereAt[id] = this.everywhere.length;
      this.everywhere.push(id);
      return id;
    }
    if (kind === EMPTY) {
      this.bucketOf[id] = NOWHERE;
      return id;
    }
    let order = Math.min(coverage.maxOrder(i), this.bucketOrder);
    // Order 0 has only 12 cells, so the loop always ends there.
    while (!coverage.cellsAt(i, order, order === 0 ? 12 : MAX_BUCKET_CELLS, this.cells)) order--;
    const cursor = coverage.cursor(i);
    this.bucketOf[id] = order;
    const table = this.buckets[order];
    for (const c of this.cells) {
      const full = cursor.status(cellSpan(order, c * POW4[SAFE_ORDER - order], 0, this.span)) === FULL;
      let b = table[c];
      if (b === undefined) {
        b = { ids: new Int32Array(4), n: 0, dead: 0 };
        table[c] = b;
      } else if (b.n === b.ids.length) {
        const next = new Int32Array(2 * b.n);
        next.set(b.ids);
        b.ids = next;
      }
      b.ids[b.n++] = id * 2 + (full ? 1 : 0);
    }
    this.perOrder[order]++;
    return id;
  }

  /**
   * File coverage `i` of `coverage` as `id` in place of the same coverage in another store
   * (PackedCoverage.sameSource): its bucket entries stand, only what the id names moves, so a
   * republished site's unchanged coverage is not filed again. False, changing nothing, when the
   * two are not the same coverage.
   */
  rebind(id: number, coverage: PackedCoverage, i: number): boolean {
    const had = this.source(id);
    if (!Number.isInteger(i) || i < 0 || i >= coverage.count) throw new RangeError(`coverage ${String(i)} is not in the store (0-${coverage.count - 1})`);
    if (!coverage.sameSource(i, had, this.items[id])) return false;
    this.sources[id] = coverage;
    this.items[id] = i;
    return true;
  }

  /**
   * Remove the item filed as `id`. Its bucket entries are not searched for: the id is marked
   * DEAD (queries skip it) and each of its buckets counts one more dead entry; a bucket is purged
   * in one pass once half of it is dead, so a removal costs about the number of cells it was filed
   * in, whatever the buckets hold. The id is reused after its last entry is purged.
   */
  remove(id: number): void {
    const coverage = this.source(id);
    const at = this.bucketOf[id];
    this.sources[id] = undefined;
    this.live--;
    if (at === EVERYWHERE) {
      const last = this.everywhere.pop();
      if (last !== undefined && last !== id) {
        this.everywhere[this.everywhereAt[id]] = last;
        this.everywhereAt[last] = this.everywhereAt[id];
      }
    } else if (at >= 0) {
      coverage.cellsAt(this.items[id], at, Infinity, this.cells);
      this.perOrder[at]--;
      this.bucketOf[id] = DEAD;
      this.unpurged[id] = this.cells.length;
      const table = this.buckets[at];
      for (const c of this.cells) {
        const b = table[c];
        if (b !== undefined && 2 * ++b.dead > b.n) this.purge(table, c, b);
      }
      return;
    }
    this.bucketOf[id] = FREE;
    this.freeIds.push(id);
  }

  /** Drop the dead entries of bucket cell c, freeing the ids left with none. */
  private purge(table: (Bucket | undefined)[], c: number, b: Bucket): void {
    let kept = 0;
    for (let k = 0; k < b.n; k++) {
      const id = b.ids[k] >>> 1;
      if (this.bucketOf[id] !== DEAD) b.ids[kept++] = b.ids[k];
      else if (--this.unpurged[id] === 0) {
        this.bucketOf[id] = FREE;
        this.freeIds.push(id);
      }
    }
    b.n = kept;
    b.dead = 0;
    if (kept === 0) table[c] = undefined;
  }

  private grow(n: number): void {
    if (n <= this.items.length) return;
    const size = Math.max(2 * this.items.length, n);
    const items = new Int32Array(size);
    items.set(this.items);
    this.items = items;
    const bucketOf = new Int8Array(size).fill(FREE);
    bucketOf.set(this.bucketOf);
    this.bucketOf = bucketOf;
    const everywhereAt = new Int32Array(size);
    everywhereAt.set(this.everywhereAt);
    this.everywhereAt = everywhereAt;
    const unpurged = new Int32Array(size);
    unpurged.set(this.unpurged);
    this.unpurged = unpurged;
    const stamp = new Int32Array(size);
    stamp.set(this.stamp);
    this.stamp = stamp;
  }

  /**
   * Ids of the items whose coverage touches the cone, in no particular order, into `out` (cleared
   * first): unknown and whole-sky coverage always, a part when PackedCoverage.touchesCone says so.
   */
  queryCone(cone: Cone, out: number[] = []): number[] {
    out.length = 0;
    for (const id of this.everywhere) out.push(id);
    let top = -1;
    for (let o = 0; o <= this.bucketOrder; o++) if (this.perOrder[o] > 0) top = o;
    if (top < 0) return out;
    if (++this.epoch === 0x7fffffff) {
      this.stamp.fill(0);
      this.epoch = 1;
    }
    this.cone = cone;
    this.top = top;
    this.out = out;
    for (let o = 0; o <= top; o++) this.exploreT[o] = chord2(cone.radius + 3 * MAX_PIXRAD[o]);
    try {
      for (let f = 0; f < 12; f++) this.visit(0, f, 0, 0, f);
    } finally {
      this.cone = undefined;
      this.out = [];
    }
    return out;
  }

  /**
   * Ids of the items whose coverage intersects `area` (a RangeLookup, as SMoc.lookup() gives), in
   * no particular order, into `out` (cleared first): unknown coverage always, every other by
   * PackedCoverage.intersects. At each order items are filed at, the area's cells at that order
   * pick the buckets to look in; an item covering a whole bucket cell the area touches needs no
   * further test.
   */
  queryMoc(area: RangeLookup, out: number[] = []): number[] {
    out.length = 0;
    if (++this.epoch === 0x7fffffff) {
      this.stamp.fill(0);
      this.epoch = 1;
    }
    const epoch = this.epoch;
    const stamp = this.stamp;
    for (const id of this.everywhere) {
      const source = this.sources[id];
      if (source !== undefined && (source.kind(this.items[id]) === UNKNOWN || source.intersects(this.items[id], area))) out.push(id);
    }
    const hi = area.hi;
    const lo = area.lo;
    for (let o = 0; o <= this.bucketOrder; o++) {
      if (this.perOrder[o] === 0) continue;
      const table = this.buckets[o];
      const k = POW4[SAFE_ORDER - o];
      let next = 0;
      for (let r = 0; r < hi.length; r += 2) {
        // The cells of order o the range [start, end) touches; a cell shared with the previous range is done.
        const first = Math.max(next, Math.floor(hi[r] / k));
        const last = Math.ceil((lo[r + 1] > 0 ? hi[r + 1] + 1 : hi[r + 1]) / k);
        for (let c = first; c < last; c++) {
          const b = table[c];
          if (b === undefined) continue;
          for (let j = 0; j < b.n; j++) {
            const packed = b.ids[j];
            const id = packed >>> 1;
            if (stamp[id] === epoch || this.bucketOf[id] === DEAD) continue;
            // Decided once: intersecting is a property of the whole coverage, not of this cell.
            stamp[id] = epoch;
            const source = this.sources[id];
            if (source !== undefined && ((packed & 1) === 1 || source.intersects(this.items[id], area))) out.push(id);
          }
        }
        next = Math.max(next, last);
      }
    }
    return out;
  }

  private visit(o: number, f: number, x: number, y: number, idx: number): void {
    const cone = this.cone!;
    const t = this.centers[o];
    const v = cone.v;
    const d2 = (t[3 * idx] - v[0]) ** 2 + (t[3 * idx + 1] - v[1]) ** 2 + (t[3 * idx + 2] - v[2]) ** 2;
    if (d2 > this.exploreT[o]) return;
    if (d2 <= cone.insideT[o]) {
      this.takeInside(o, idx);
      return;
    }
    // An item filed at o whose maxOrder is m ≥ o can only match if d ≤ r + R[o] + R[m] ≤ r + 2·R[o].
    if (this.perOrder[o] > 0 && d2 <= cone.pair(o, o)) {
      const b = this.buckets[o][idx];
      if (b !== undefined) this.check(b, o, f, x, y, idx, d2);
    }
    if (o < this.top) {
      for (let k = 0; k < 4; k++) this.visit(o + 1, f, 2 * x + (k & 1), 2 * y + (k >> 1), 4 * idx + k);
    }
  }

  /** The cell lies inside the disc: every item filed in it or below touches the cone. */
  private takeInside(o: number, idx: number): void {
    for (let b = o; b <= this.top; b++) {
      if (this.perOrder[b] === 0) continue;
      const table = this.buckets[b];
      const n = POW4[b - o];
      for (let c = idx * n, end = c + n; c < end; c++) {
        const bucket = table[c];
        if (bucket === undefined) continue;
        for (let k = 0; k < bucket.n; k++) this.accept(bucket.ids[k] >>> 1);
      }
    }
  }

  private accept(id: number): void {
    if (this.stamp[id] === this.epoch || this.bucketOf[id] === DEAD) return;
    this.stamp[id] = this.epoch;
    this.out.push(id);
  }

  /** Decide each item filed in a bucket cell on the cone's rim. */
  private check(b: Bucket, o: number, f: number, x: number, y: number, idx: number, d2: number): void {
    const cone = this.cone!;
    const stamp = this.stamp;
    const epoch = this.epoch;
    for (let k = 0; k < b.n; k++) {
      const packed = b.ids[k];
      const id = packed >>> 1;
      if (stamp[id] === epoch) continue;
      const coverage = this.sources[id];
      // Removed, its entry not yet purged.
      if (coverage === undefined) continue;
      const i = this.items[id];
      const m = coverage.maxOrder(i);
      const full = (packed & 1) === 1;
      if (o === m) {
        // At its own maxOrder a filed cell is wholly covered: the inclusive test decides.
        if (d2 <= cone.inclT[m]) this.accept(id);
        continue;
      }
      if (full && d2 <= cone.rT) {
        this.accept(id);
        continue;
      }
      if (d2 > cone.pair(o, m)) continue;
      if (!coverage.mayTouch(i, cone)) {
        // The whole coverage is out of reach, so its other buckets need no look either.
        stamp[id] = epoch;
        continue;
      }
      if (touchesBelow(coverage.cursor(i), m, cone, o, f, x, y, idx * POW4[SAFE_ORDER - o], 0, d2, full ? FULL : PARTIAL)) this.accept(id);
    }
  }
}
