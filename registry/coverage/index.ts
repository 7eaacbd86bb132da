/**
 * In-memory index answering "whose sky coverage touches this cone" over many MOCs.
 *
 * Each MOC is filed under the cells it touches at one coarse "bucket" order: the finest order up
 * to BUCKET_ORDER (and its own maxOrder) at which it spans at most MAX_BUCKET_CELLS cells, so a
 * small footprint lands in a few fine buckets and a huge one in a few coarse buckets. A query
 * walks the cone's cells down to BUCKET_ORDER, accepts whole buckets that lie inside the disc,
 * and checks candidates on the rim exactly with the same walk SMoc.intersectsCone uses, starting
 * from the bucket cell instead of the whole sky. Unknown (null) and whole-sky coverage match
 * every cone and sit on a separate list, so they cost one push per query.
 *
 * Results equal `moc === null || moc.intersectsCone(...)` for every key.
 */
import { Cone, touchesBelow } from './cone.js';
import { capCells, capOf, cellsAt } from './cap.js';
import { MAX_PIXRAD, POW4, SAFE_ORDER, cellCenter, centerTable, chord2, nestToFxy, vec3 } from './healpix.js';
import { FULL, PARTIAL, cellSpan, type CellSpan, type RangeLookup } from './ranges.js';
import type { SMoc } from './moc.js';

/** Default finest bucket order: cells of about 0.46°, near the small cones the planner asks about (measured best of 5–7). */
const BUCKET_ORDER = 7;
/** Most bucket cells one MOC may occupy before it is filed at a coarser order. */
const MAX_BUCKET_CELLS = 48;

const EVERYWHERE = 0;
const NOWHERE = 1;
const BUCKETED = 2;

interface Entry<K> {
  key: K;
  id: number;
  moc: SMoc | null;
  kind: typeof EVERYWHERE | typeof NOWHERE | typeof BUCKETED;
  maxOrder: number;
  lookup: RangeLookup | undefined;
  bucketOrder: number;
  cells: number[];
  /** Bounding cap: centre and angular radius (Infinity when it would not prune anything). */
  cap: Float64Array;
  capRadius: number;
  /** Position in the everywhere list, or -1. */
  everywhereAt: number;
}

/** Sky-coverage index over keys K (one MOC per key). */
export class CoverageIndex<K> {
  private readonly entries = new Map<K, Entry<K>>();
  private byId: (Entry<K> | undefined)[] = [];
  private readonly freeIds: number[] = [];
  private readonly everywhere: Entry<K>[] = [];
  /** buckets[o][cell] = packed ids (id·2 + 1 when the MOC covers the whole cell). */
  private readonly bucketOrder: number;
  private readonly buckets: (number[] | undefined)[][];
  private readonly perOrder: number[];
  /** Cell centres at each bucket order, so the query walk needs no trigonometry. */
  private readonly centers: Float64Array[];
  private stamp = new Int32Array(1024);
  private epoch = 0;
  /** The query in progress: its cone, deepest non-empty bucket order, results, and per-order exploration thresholds. */
  private q: { cone: Cone; top: number; out: K[]; exploreT: Float64Array } | undefined;

  /** `bucketOrder` (0–8, default 7) trades memory and insert time for fewer candidates per query. */
  constructor(options: { bucketOrder?: number } = {}) {
    const order = options.bucketOrder ?? BUCKET_ORDER;
    if (!Number.isInteger(order) || order < 0 || order > 8) throw new RangeError(`bucketOrder must be an integer 0-8 (got ${String(order)})`);
    this.bucketOrder = order;
    this.buckets = Array.from({ length: order + 1 }, () => []);
    this.perOrder = new Array<number>(order + 1).fill(0);
    this.centers = Array.from({ length: order + 1 }, (_, o) => centerTable(o));
  }

  /** Number of keys held. */
  get size(): number {
    return this.entries.size;
  }

  /** Whether the key is held. */
  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** The MOC stored for a key (null: unknown coverage), or undefined when absent. */
  get(key: K): SMoc | null | undefined {
    return this.entries.get(key)?.moc;
  }

  /** Every key held. */
  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  /** Store or replace a key's coverage; null means unknown, treated as the whole sky. */
  set(key: K, moc: SMoc | null): void {
    this.delete(key);
    const id = this.freeIds.pop() ?? this.byId.length;
    const e: Entry<K> = {
      key,
      id,
      moc,
      kind: BUCKETED,
      maxOrder: moc?.maxOrder ?? 0,
      lookup: undefined,
      bucketOrder: 0,
      cells: [],
      cap: vec3(),
      capRadius: Infinity,
      everywhereAt: -1,
    };
    this.byId[id] = e;
    if (id >= this.stamp.length) {
      const grown = new Int32Array(Math.max(this.stamp.length * 2, id + 1));
      grown.set(this.stamp);
      this.stamp = grown;
    }
    this.entries.set(key, e);
    if (moc === null || moc.isFullSky()) {
      e.kind = EVERYWHERE;
      e.everywhereAt = this.everywhere.length;
      this.everywhere.push(e);
      return;
    }
    if (moc.isEmpty()) {
      e.kind = NOWHERE;
      return;
    }
    e.lookup = moc.lookup();
    let order = Math.min(moc.maxOrder, this.bucketOrder);
    let cells = cellsAt(moc.ranges, order, MAX_BUCKET_CELLS);
    while (cells === undefined) {
      order--;
      // Order 0 has only 12 cells, so the loop always ends there.
      cells = cellsAt(moc.ranges, order, order === 0 ? 12 : MAX_BUCKET_CELLS);
    }
    e.bucketOrder = order;
    e.cells = cells;
    const span: CellSpan = { sh: 0, sl: 0, eh: 0, el: 0 };
    const table = this.buckets[order];
    for (const c of cells) {
      const full = e.lookup.status(cellSpan(order, c * POW4[SAFE_ORDER - order], 0, span)) === FULL;
      (table[c] ??= []).push(id * 2 + (full ? 1 : 0));
    }
    this.perOrder[order]++;
    this.computeCap(e, moc);
  }

  /** Bounding cap from the MOC's cells at a moderate order, used to drop far candidates in one test. */
  private computeCap(e: Entry<K>, moc: SMoc): void {
    const picked = capCells(moc, e.bucketOrder);
    const order = picked.order;
    const cap = capOf(order, picked.cells ?? e.cells);
    if (cap === undefined) return;
    const worst = cap.radius;
    const v = cap.centre;
    const radius = worst + MAX_PIXRAD[order] + 1e-9;
    if (radius >= Math.PI / 2) return;
    e.cap = v;
    e.capRadius = radius;
  }

  /** Remove a key; returns whether it was held. */
  delete(key: K): boolean {
    const e = this.entries.get(key);
    if (e === undefined) return false;
    this.entries.delete(key);
    this.byId[e.id] = undefined;
    this.freeIds.push(e.id);
    if (e.kind === EVERYWHERE) {
      const last = this.everywhere.pop()!;
      if (last !== e) {
        this.everywhere[e.everywhereAt] = last;
        last.everywhereAt = e.everywhereAt;
      }
    } else if (e.kind === BUCKETED) {
      const table = this.buckets[e.bucketOrder];
      for (const c of e.cells) {
        const list = table[c]!;
        const at = list.findIndex((p) => p >>> 1 === e.id);
        list[at] = list[list.length - 1];
        list.pop();
        if (list.length === 0) table[c] = undefined;
      }
      this.perOrder[e.bucketOrder]--;
    }
    return true;
  }

  /** Remove every key. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.delete(key);
    this.byId = [];
    this.freeIds.length = 0;
  }

  /**
   * Keys whose coverage touches the cone, in no particular order: exactly those whose MOC has a
   * covered maxOrder cell among the cone's inclusive cells at that order (see SMoc.intersectsCone),
   * plus every key of unknown or whole-sky coverage. Throws RangeError on a bad cone.
   */
  queryCone(ra: number, dec: number, radiusDeg: number): K[] {
    const cone = new Cone(ra, dec, radiusDeg);
    const out: K[] = [];
    for (const e of this.everywhere) out.push(e.key);
    let top = -1;
    for (let o = 0; o <= this.bucketOrder; o++) if (this.perOrder[o] > 0) top = o;
    if (top < 0) return out;
    if (++this.epoch === 0x7fffffff) {
      this.stamp.fill(0);
      this.epoch = 1;
    }
    this.q = { cone, top, out, exploreT: new Float64Array(top + 1) };
    for (let o = 0; o <= top; o++) this.q.exploreT[o] = chord2(cone.radius + 3 * MAX_PIXRAD[o]);
    try {
      for (let f = 0; f < 12; f++) this.visit(0, f, 0, 0, f);
    } finally {
      this.q = undefined;
    }
    return out;
  }

  /** Approximate fraction of the key's covered area inside the cone (for row estimates: rows × fraction). */
  coverageFraction(key: K, ra: number, dec: number, radiusDeg: number): number {
    const e = this.entries.get(key);
    if (e === undefined) throw new RangeError(`no coverage is indexed for key ${String(key)}`);
    if (e.moc === null) return new Cone(ra, dec, radiusDeg).skyFraction();
    return e.moc.coneOverlapFraction(ra, dec, radiusDeg);
  }

  private visit(o: number, f: number, x: number, y: number, idx: number): void {
    const q = this.q!;
    const cone = q.cone;
    const t = this.centers[o];
    const v = cone.v;
    const d2 = (t[3 * idx] - v[0]) ** 2 + (t[3 * idx + 1] - v[1]) ** 2 + (t[3 * idx + 2] - v[2]) ** 2;
    if (d2 > q.exploreT[o]) return;
    if (d2 <= cone.insideT[o]) {
      this.takeInside(o, idx);
      return;
    }
    // A key filed at o whose maxOrder is m ≥ o can only match if d ≤ r + R[o] + R[m] ≤ r + 2·R[o].
    if (this.perOrder[o] > 0 && d2 <= cone.pair(o, o)) {
      const list = this.buckets[o][idx];
      if (list !== undefined) this.check(list, o, f, x, y, idx, d2);
    }
    if (o < q.top) {
      for (let k = 0; k < 4; k++) this.visit(o + 1, f, 2 * x + (k & 1), 2 * y + (k >> 1), 4 * idx + k);
    }
  }

  /** The cell lies inside the disc: every key filed in it or below touches the cone. */
  private takeInside(o: number, idx: number): void {
    const top = this.q!.top;
    for (let b = o; b <= top; b++) {
      if (this.perOrder[b] === 0) continue;
      const table = this.buckets[b];
      const n = POW4[b - o];
      for (let c = idx * n, end = c + n; c < end; c++) {
        const list = table[c];
        if (list === undefined) continue;
        for (const packed of list) this.accept(packed >>> 1);
      }
    }
  }

  private accept(id: number): void {
    if (this.stamp[id] === this.epoch) return;
    this.stamp[id] = this.epoch;
    this.q!.out.push(this.byId[id]!.key);
  }

  /** Decide each key filed in a bucket cell on the cone's rim. */
  private check(list: number[], o: number, f: number, x: number, y: number, idx: number, d2: number): void {
    const cone = this.q!.cone;
    const stamp = this.stamp;
    const epoch = this.epoch;
    for (const packed of list) {
      const id = packed >>> 1;
      if (stamp[id] === epoch) continue;
      const e = this.byId[id]!;
      const m = e.maxOrder;
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
      if (e.capRadius !== Infinity) {
        const c = e.cap;
        const v = cone.v;
        const cd2 = (c[0] - v[0]) ** 2 + (c[1] - v[1]) ** 2 + (c[2] - v[2]) ** 2;
        if (cd2 > chord2(cone.radius + e.capRadius + MAX_PIXRAD[m])) {
          // The whole MOC is out of reach, so its other buckets need no look either.
          stamp[id] = epoch;
          continue;
        }
      }
      if (touchesBelow(e.lookup!, m, cone, o, f, x, y, idx * POW4[SAFE_ORDER - o], 0, d2, full ? FULL : PARTIAL)) this.accept(id);
    }
  }
}
