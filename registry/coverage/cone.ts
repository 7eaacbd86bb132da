/**
 * Cones on the sky and the hierarchical walks that relate them to HEALPix cells.
 *
 * "Inclusive cells of a cone at order L" means every cell at L whose centre lies within
 * radius + MAX_PIXRAD[L] of the cone centre (the HEALPix query_disc(inclusive) rule): a superset
 * of the cells the true disc touches. All walks start coarse and only descend where a finer
 * cell could still pass, so their cost follows the cone's rim, not its area.
 */
import { MAX_ORDER, MAX_PIXRAD, POW4, SAFE_ORDER, cellCenter, centerTable, chord2, radecToVec, vec3, type Vec3 } from './healpix.js';
import { FULL, NONE, RangeBuilder, cellSpan, type CellCover, type CellSpan, type Ranges } from './ranges.js';

/**
 * A validated cone with its squared-chord thresholds cached per order. The tables are plain
 * arrays: a Float64Array of 30 keeps its data off the V8 heap, which the young-generation
 * collection must then free separately; with a cone per plan that lengthened its pauses in
 * the planner bench by about a third.
 */
export class Cone {
  /** Unit vector of the centre. */
  readonly v: Vec3;
  /** Radius in radians. */
  readonly radius: number;
  /** chord²(radius). */
  readonly rT: number;
  /** chord²(radius + MAX_PIXRAD[o]): a cell centre within this passes the inclusive test at o. */
  readonly inclT: readonly number[];
  /** chord²(radius − MAX_PIXRAD[o]): a cell centre within this puts the whole cell inside the disc. */
  readonly insideT: readonly number[];
  private readonly pairT: (number[] | undefined)[] = [];
  /** Per order, the disc's area in cells wholly covered by a MOC, as coveredInCone walks them, by cell number (see fullArea). */
  private fullAreas: (Map<number, number> | undefined)[] | undefined;
  /** Per order above the table's, d2 of the cells walked so far, by order-24 start (see d2At). */
  private fineD2: (Map<number, number> | undefined)[] | undefined;

  constructor(
    readonly raDeg: number,
    readonly decDeg: number,
    readonly radiusDeg: number,
  ) {
    checkCone(raDeg, decDeg, radiusDeg);
    this.v = radecToVec(raDeg, decDeg);
    this.radius = (radiusDeg * Math.PI) / 180;
    this.rT = chord2(this.radius);
    this.inclT = MAX_PIXRAD.map((p) => chord2(this.radius + p));
    this.insideT = MAX_PIXRAD.map((p) => chord2(this.radius - p));
  }

  /** chord²(radius + MAX_PIXRAD[o] + MAX_PIXRAD[m]): beyond it no descendant at m of a cell at o passes. */
  pair(o: number, m: number): number {
    let row = this.pairT[m];
    if (row === undefined) {
      row = MAX_PIXRAD.map((p) => chord2(this.radius + p + MAX_PIXRAD[m]));
      this.pairT[m] = row;
    }
    return row[o];
  }

  /** Squared chord from the centre to the centre of cell (o, f, x, y). */
  d2(o: number, f: number, x: number, y: number): number {
    const c = cellCenter(o, f, x, y, scratch);
    const dx = c[0] - this.v[0];
    const dy = c[1] - this.v[1];
    const dz = c[2] - this.v[2];
    return dx * dx + dy * dy + dz * dz;
  }

  /**
   * {@link d2} for the cell whose order-24 start is s24: read from the cell-centre table at
   * orders up to 7, which holds the same centres cellCenter computes, so the result is the same;
   * finer cells are computed once per cone (a plan walks many coverages' rims over one cone).
   */
  d2At(o: number, f: number, x: number, y: number, s24: number): number {
    if (o > TABLE_ORDER) {
      // Only as fine as a plan's walks go, and at most MEMO_CELLS cells an order: a cone drawn
      // at a fine order (fromCone) visits millions of cells once each.
      if (o > MEMO_ORDER) return this.d2(o, f, x, y);
      const byOrder = (this.fineD2 ??= []);
      const known = (byOrder[o] ??= new Map());
      let d2 = known.get(s24);
      if (d2 === undefined) {
        d2 = this.d2(o, f, x, y);
        if (known.size < MEMO_CELLS) known.set(s24, d2);
      }
      return d2;
    }
    const t = tables[o] ?? (tables[o] = centerTable(o));
    const i = 3 * (s24 / POW4[SAFE_ORDER - o]);
    const dx = t[i] - this.v[0];
    const dy = t[i + 1] - this.v[1];
    const dz = t[i + 2] - this.v[2];
    return dx * dx + dy * dy + dz * dz;
  }

  /**
   * {@link d2At} without keeping the result: for the cells below a wholly covered cell, which a
   * plan's walks visit once per cone (the sum below is kept, see fullArea), so keeping each
   * cell's d2 would cost more than it saves. The same value as d2At.
   */
  d2Once(o: number, f: number, x: number, y: number, s24: number): number {
    if (o > TABLE_ORDER) return this.d2(o, f, x, y);
    return this.d2At(o, f, x, y, s24);
  }

  /**
   * What coveredInCone adds up below a cell of order o (≤ 24, starting at order-24 cell s24)
   * that a MOC covers wholly: a property of the cone alone, so the walks of many MOCs over one
   * cone (a plan's replicas) compute it once. Undefined until kept.
   */
  fullArea(o: number, s24: number): number | undefined {
    return this.fullAreas?.[o]?.get(s24 / POW4[SAFE_ORDER - o]);
  }

  /** Keep {@link fullArea} of a cell (by its number at its order: a small integer up to order 12, cheap to key a Map by). */
  keepFullArea(o: number, s24: number, area: number): void {
    const byOrder = (this.fullAreas ??= []);
    (byOrder[o] ??= new Map()).set(s24 / POW4[SAFE_ORDER - o], area);
  }

  /** Area of the disc as a fraction of the sphere. */
  skyFraction(): number {
    // sin²(r/2) rather than (1 − cos r)/2, which rounds to 0 for tiny radii.
    const s = Math.sin(this.radius / 2);
    return s * s;
  }
}

const scratch = vec3();
/** Finest order whose cell centres the walks read from a table (healpix.ts centerTable; the sky indexes build these). */
const TABLE_ORDER = 7;
/** Finest order whose cells' d2 a cone keeps (below order 24, where s24 names one cell), and how many per order. */
const MEMO_ORDER = 16;
const MEMO_CELLS = 1 << 15;
const tables: (Float64Array | undefined)[] = [];

/** Throw a RangeError naming the first bad cone argument. */
export function checkCone(ra: number, dec: number, radiusDeg: number): void {
  if (typeof ra !== 'number' || !Number.isFinite(ra)) throw new RangeError(`ra must be a finite number of degrees (got ${String(ra)})`);
  if (typeof dec !== 'number' || !(dec >= -90 && dec <= 90)) throw new RangeError(`dec must be within [-90, 90] degrees (got ${String(dec)})`);
  if (typeof radiusDeg !== 'number' || !(radiusDeg > 0 && radiusDeg <= 180)) {
    throw new RangeError(`radius must be within (0, 180] degrees (got ${String(radiusDeg)})`);
  }
}

/** Throw a RangeError unless `order` is an integer 0–29. */
export function checkOrder(order: number, name = 'order'): void {
  if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) throw new RangeError(`${name} must be an integer 0-29 (got ${String(order)})`);
}

/** Child k (0–3) of a cell follows the NESTED bit layout: x on the even bit, y on the odd bit. */
function childS24(o: number, s24: number, k: number): number {
  return o < SAFE_ORDER ? s24 + k * POW4[SAFE_ORDER - o - 1] : s24;
}
function childS5(o: number, s5: number, k: number): number {
  return o < SAFE_ORDER ? 0 : s5 + k * POW4[MAX_ORDER - o - 1];
}

/** Order-29 range of the cell whose start is (s24, s5) at order o. */
function cellBig(o: number, s24: number, s5: number): [bigint, bigint] {
  const s = BigInt(s24) * 1024n + BigInt(s5);
  return [s, s + (1n << BigInt(2 * (MAX_ORDER - o)))];
}

/** Rough count of cells on a cone's rim at `order`, to refuse walks that would not finish. */
export function rimCells(cone: Cone, order: number): number {
  const r = Math.min(cone.radius + MAX_PIXRAD[order], Math.PI / 2);
  return (4 * Math.PI * Math.sin(r)) / MAX_PIXRAD[order] + 12;
}

/** Inclusive cells of the cone at `order`, as order-29 ranges. */
export function coneRanges(cone: Cone, order: number): Ranges {
  const out = new RangeBuilder();
  const visit = (o: number, f: number, x: number, y: number, s24: number, s5: number): void => {
    const d2 = cone.d2At(o, f, x, y, s24);
    if (o === order) {
      if (d2 <= cone.inclT[o]) out.push(...cellBig(o, s24, s5));
      return;
    }
    if (d2 > cone.pair(o, order)) return;
    if (d2 <= cone.insideT[o]) {
      out.push(...cellBig(o, s24, s5));
      return;
    }
    for (let k = 0; k < 4; k++) visit(o + 1, f, 2 * x + (k & 1), 2 * y + (k >> 1), childS24(o, s24, k), childS5(o, s5, k));
  };
  for (let f = 0; f < 12; f++) visit(0, f, 0, 0, f * POW4[SAFE_ORDER], 0);
  return out.finish();
}

const spanScratch: CellSpan = { sh: 0, sl: 0, eh: 0, el: 0 };

/**
 * Whether some covered cell at `maxOrder` is an inclusive cell of the cone, searching only below
 * the given cell (o, f, x, y, s24, s5) whose squared chord to the cone centre is d2 and whose
 * cover is `cover` (1 or 2). The set must be aligned to maxOrder (every MOC is).
 */
export function touchesBelow(
  lk: CellCover,
  maxOrder: number,
  cone: Cone,
  o: number,
  f: number,
  x: number,
  y: number,
  s24: number,
  s5: number,
  d2: number,
  cover: number,
): boolean {
  if (o >= maxOrder) return d2 <= cone.inclT[maxOrder];
  if (d2 > cone.pair(o, maxOrder)) return false;
  // A fully covered cell whose centre is in the disc holds that centre in some covered cell at
  // maxOrder, and that cell's own centre is within MAX_PIXRAD[maxOrder] of it.
  if (cover === FULL && d2 <= cone.rT) return true;
  const c = o + 1;
  for (let k = 0; k < 4; k++) {
    const cs24 = childS24(o, s24, k);
    const cs5 = childS5(o, s5, k);
    const st = cover === FULL ? FULL : lk.status(cellSpan(c, cs24, cs5, spanScratch));
    if (st === NONE) continue;
    const cx = 2 * x + (k & 1);
    const cy = 2 * y + (k >> 1);
    if (touchesBelow(lk, maxOrder, cone, c, f, cx, cy, cs24, cs5, cone.d2At(c, f, cx, cy, cs24), st)) return true;
  }
  return false;
}

/** Whether a range set aligned to maxOrder has a covered cell at maxOrder among the cone's inclusive cells. */
export function touchesCone(lk: CellCover, maxOrder: number, cone: Cone): boolean {
  if (lk.size === 0) return false;
  for (let f = 0; f < 12; f++) {
    const s24 = f * POW4[SAFE_ORDER];
    const st = lk.status(cellSpan(0, s24, 0, spanScratch));
    if (st === NONE) continue;
    if (touchesBelow(lk, maxOrder, cone, 0, f, 0, 0, s24, 0, cone.d2At(0, f, 0, 0, s24), st)) return true;
  }
  return false;
}

/**
 * Approximate number of covered order-29 cells inside the disc. Cells wholly inside or outside
 * count exactly; cells on the rim are refined to about radius/16 and then weighted by how far
 * their centre lies inside the rim. `maxOrder` is the set's resolution (every MOC is aligned to
 * it): the cone keeps the sums below wholly covered cells of that order or coarser, where
 * another set's walk over the same cone may arrive too; below, no walk starts a covered cell.
 */
export function coveredInCone(lk: CellCover, cone: Cone, maxOrder: number = SAFE_ORDER): number {
  shareTo = Math.min(maxOrder, SAFE_ORDER);
  let leaf = 3;
  while (leaf < MAX_ORDER && MAX_PIXRAD[leaf] > cone.radius / 16) leaf++;
  let total = 0;
  for (let f = 0; f < 12; f++) {
    const s24 = f * POW4[SAFE_ORDER];
    const st = lk.status(cellSpan(0, s24, 0, spanScratch));
    if (st === NONE) continue;
    sums[0] = 0;
    starts[0] = s24;
    coveredBelow(lk, cone, leaf, 0, f, 0, 0, 0, st);
    total += sums[0];
  }
  return total;
}

/**
 * Per order, the running sum of the cells being added up and the order-24 start of the cell being
 * walked, for coveredBelow. Both are doubles, and a double passed to or returned from a call is
 * boxed on the heap; in arrays the walk, the planner's hottest loop, allocates nothing per cell.
 */
const sums = new Float64Array(MAX_ORDER + 1);
const starts = new Float64Array(MAX_ORDER + 1);
/** Finest order whose wholly covered cells' sums the walk in progress keeps on the cone. */
let shareTo = SAFE_ORDER;

/**
 * The walk of coveredInCone from cell (o, f, x, y), starting at (starts[o], s5), with cover
 * `cover`: adds the cell's share to sums[o], in the same order of additions as a walk returning
 * each cell's sum would, so the result does not depend on this layout.
 */
function coveredBelow(lk: CellCover, cone: Cone, leaf: number, o: number, f: number, x: number, y: number, s5: number, cover: number): void {
  const s24 = starts[o];
  // Below a wholly covered cell each cell is walked once per cone: its d2 is not worth keeping.
  const d2 = cover === FULL ? cone.d2Once(o, f, x, y, s24) : cone.d2At(o, f, x, y, s24);
  if (d2 > cone.inclT[o]) return;
  if (d2 <= cone.insideT[o]) {
    sums[o] += coveredCells(lk, o, s24, s5, cover);
    return;
  }
  if (o >= leaf) {
    const d = 2 * Math.asin(Math.min(1, Math.sqrt(d2) / 2));
    // A cell's half-width is about 0.7 of its centre-to-corner radius.
    const w = 0.5 + (cone.radius - d) / (1.4 * MAX_PIXRAD[o]);
    if (w > 0) sums[o] += coveredCells(lk, o, s24, s5, cover) * Math.min(1, w);
    return;
  }
  // Below a wholly covered cell the sum depends on the cone alone: computed once per cone. Only
  // down to the set's resolution: a finer wholly covered cell lies inside one of that order
  // whose sum is kept, and keeping each of them would cost more than walking them again.
  const shared = cover === FULL && o <= shareTo;
  if (shared) {
    const known = cone.fullArea(o, s24);
    if (known !== undefined) {
      sums[o] += known;
      return;
    }
  }
  sums[o + 1] = 0;
  for (let k = 0; k < 4; k++) {
    const cs24 = childS24(o, s24, k);
    const cs5 = childS5(o, s5, k);
    const st = cover === FULL ? FULL : lk.status(cellSpan(o + 1, cs24, cs5, spanScratch));
    if (st === NONE) continue;
    starts[o + 1] = cs24;
    coveredBelow(lk, cone, leaf, o + 1, f, 2 * x + (k & 1), 2 * y + (k >> 1), cs5, st);
  }
  if (shared) cone.keepFullArea(o, s24, sums[o + 1]);
  sums[o] += sums[o + 1];
}

/** Covered order-29 cells of the cell at (o, s24, s5) with cover `cover`. */
function coveredCells(lk: CellCover, o: number, s24: number, s5: number, cover: number): number {
  return cover === FULL ? POW4[MAX_ORDER - o] : lk.covered(cellSpan(o, s24, s5, spanScratch));
}
