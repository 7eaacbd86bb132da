/**
 * HEALPix (NESTED) tiling of a cross-match region, and what each tile reads.
 *
 * A tile is a cell of one order touching the region. A left row belongs to the tile of its own
 * cell (and must lie in the region), so every left row of the region is in exactly one tile.
 * A tile's right side is read over the tile widened by the match radius, so every right row
 * within the radius of one of the tile's left rows is read with it: a pair on a tile edge is
 * found once, by the tile of its left row.
 *
 * ADQL has no HEALPix cells, so a tile is read over a CIRCLE around the cell (a superset, its
 * radius bounded rigorously below), or, where the service offers the ivo_healpix_index UDF, with
 * the exact cell. After a circle read the broker keeps only the left rows `leftInTile` accepts.
 */
import { capCells, capOf } from '../../registry/coverage/cap.js';
import { MAX_PIXRAD, cellCenter, nestIndex, nestToFxy, radecToVec, vecToCell, vec3, type Vec3 } from '../../registry/coverage/healpix.js';
import type { SMoc } from '../../registry/coverage/moc.js';
import { SKY_SR, capAreaSr } from './estimates.js';
import type { ConeDeg, CrossmatchRegion } from './types.js';

/** The finest tile order the planner tries unless told otherwise (cells of about 0.014°). */
export const DEFAULT_MAX_TILE_ORDER = 12;

/** One tile: a NESTED cell, or (order null) the whole region as one piece. */
export interface Tile {
  order: number | null;
  cell: number;
}

/** The whole region as one piece. */
export const WHOLE_REGION: Tile = Object.freeze({ order: null, cell: 0 });

/** How the region falls into the cells of one order. */
export interface TileStats {
  order: number;
  /** Tiles (cells touching the region). */
  count: number;
  /** Tiles wholly inside the region. */
  fullCount: number;
  /** Region area in each partly covered tile, as a fraction of the region. */
  partial: Map<number, number>;
  /** Region fraction of one whole tile. */
  fullShare: number;
  /** Largest region fraction in one tile. */
  maxShare: number;
}

/** The region's tiles at `order` with the share of the region each holds (no cell list is built). */
export function tileStats(region: SMoc, order: number): TileStats {
  const shift = BigInt(2 * (29 - order));
  const size = 1n << shift;
  const mask = size - 1n;
  const cells: Map<number, bigint> = new Map();
  const add = (cell: bigint, n: bigint) => {
    const c = Number(cell);
    cells.set(c, (cells.get(c) ?? 0n) + n);
  };
  let full = 0;
  const r = region.ranges;
  let total = 0n;
  for (let i = 0; i < r.length; i += 2) {
    const s = r[i];
    const e = r[i + 1];
    total += e - s;
    let first = s >> shift;
    let last = (e - 1n) >> shift;
    if (first === last) {
      if (e - s === size) full++;
      else add(first, e - s);
      continue;
    }
    if ((s & mask) !== 0n) {
      add(first, ((first + 1n) << shift) - s);
      first++;
    }
    if ((e & mask) !== 0n) {
      add(last, e - (last << shift));
      last--;
    }
    if (last >= first) full += Number(last - first + 1n);
  }
  const whole = Number(total);
  const fullShare = whole === 0 ? 0 : Number(size) / whole;
  const partial = new Map<number, number>();
  let maxShare = full > 0 ? fullShare : 0;
  for (const [c, n] of cells) {
    const share = Number(n) / whole;
    partial.set(c, share);
    if (share > maxShare) maxShare = share;
  }
  return { order, count: full + partial.size, fullCount: full, partial, fullShare, maxShare };
}

/** The NESTED cells of `order` touching the region, ascending. */
export function tileCells(region: SMoc, order: number): number[] {
  const shift = BigInt(2 * (29 - order));
  const out: number[] = [];
  const r = region.ranges;
  for (let i = 0; i < r.length; i += 2) {
    const last = Number((r[i + 1] - 1n) >> shift);
    // A cell shared with the previous range is already listed.
    let c = Number(r[i] >> shift);
    if (out.length > 0 && out[out.length - 1] >= c) c = out[out.length - 1] + 1;
    for (; c <= last; c++) out.push(c);
  }
  return out;
}

/** The NESTED cell of `order` holding a position. */
export function cellOf(order: number, raDeg: number, decDeg: number): number {
  const { f, x, y } = vecToCell(order, radecToVec(raDeg, decDeg));
  return nestIndex(order, f, x, y);
}

/** Sub-cell depth used to bound a cell's circumradius: 4·2^5 boundary samples per cell. */
const RIM_DEPTH = 5;

/**
 * A circle holding the whole cell: centred on the cell centre, its radius the largest distance
 * to the centre of a sub-cell on the cell's rim plus the largest sub-cell radius. The farthest
 * point of a cell from its centre lies on its rim, and every rim point lies in a rim sub-cell,
 * so the bound is rigorous.
 */
export function cellCircle(order: number, cell: number): ConeDeg {
  const { f, x, y } = nestToFxy(order, cell);
  const c = cellCenter(order, f, x, y, vec3());
  const d = Math.min(RIM_DEPTH, 29 - order);
  const n = 2 ** d;
  const v = vec3();
  let worst = 0;
  const probe = (sx: number, sy: number) => {
    cellCenter(order + d, f, x * n + sx, y * n + sy, v);
    worst = Math.max(worst, angle(c, v));
  };
  for (let i = 0; i < n; i++) {
    probe(i, 0);
    probe(i, n - 1);
    probe(0, i);
    probe(n - 1, i);
  }
  return { ...toRaDec(c), radiusDeg: toDeg(worst + MAX_PIXRAD[order + d]) };
}

/**
 * The largest circle factor of any cell of orders 0 to 5 (every cell measured), and a bound on
 * it at finer orders (3.42 at most over 20,000 cells sampled at each of orders 6 to 12): cells
 * at the corners of HEALPix's base pixels are long and thin, so their circles are largest.
 */
const LARGEST_CIRCLE_FACTOR = [2.04, 2.74, 3.1, 3.27, 3.35, 3.39];
const LARGEST_CIRCLE_FACTOR_FINER = 3.5;

/**
 * Area of the circle a tile is read over (`cellCircle`) over the cell's own area: how many times
 * the cell's rows a circle read returns, 1.6 for a square-ish cell to 3.4 for the thinnest. With
 * `cell` null, the largest factor of any cell of the order.
 */
export function circleReadFactor(order: number, cell: number | null): number {
  if (cell === null) return LARGEST_CIRCLE_FACTOR[order] ?? LARGEST_CIRCLE_FACTOR_FINER;
  const cellArea = SKY_SR / (12 * 4 ** order);
  return capAreaSr((cellCircle(order, cell).radiusDeg * Math.PI) / 180) / cellArea;
}

/** A circle holding the whole MOC (from its cells' bounding cap), or null when no cap helps. */
export function mocCircle(moc: SMoc): ConeDeg | null {
  if (moc.isEmpty() || moc.isFullSky()) return null;
  const { order, cells } = capCells(moc, 0);
  if (cells === undefined) return null;
  const cap = capOf(order, cells);
  if (cap === undefined) return null;
  const radius = cap.radius + MAX_PIXRAD[order];
  if (radius >= Math.PI) return null;
  return { ...toRaDec(cap.centre), radiusDeg: toDeg(radius) };
}

/** A constraint on positions a site can evaluate in ADQL. */
export type AdqlArea =
  | { kind: 'circle'; circle: ConeDeg }
  | { kind: 'healpix'; order: number; cell: number };

/** What one tile reads on each side: areas combined with AND (none: no spatial constraint). */
export interface TileReads {
  tile: Tile;
  /** Left rows: the tile's cell (and the region). A superset unless `leftExact`. */
  left: AdqlArea[];
  /** Whether `left` is exactly the tile's left set (no broker filter needed). */
  leftExact: boolean;
  /** Right rows: the tile's circle and the region's, each widened by the radius (a superset). */
  right: AdqlArea[];
}

/**
 * The ADQL areas a tile reads over. Left: the cell as ivo_healpix_index (when `healpixUdf`) or
 * its circle, and the region's cone (or a circle holding the MOC region). Right: the cell's
 * circle and the region's, widened by the radius. `leftExact` tells whether the broker must
 * still filter the left rows with `leftInTile` (always true of MOC regions and circle reads).
 */
export function tileReads(tile: Tile, region: CrossmatchRegion, radiusArcsec: number, options: { healpixUdf?: boolean } = {}): TileReads {
  const widen = radiusArcsec / 3600;
  const regionCircle = region.cone ?? mocCircle(region.moc);
  const left: AdqlArea[] = [];
  const right: AdqlArea[] = [];
  let exact = region.cone !== null;
  if (tile.order !== null) {
    const circle = cellCircle(tile.order, tile.cell);
    if (options.healpixUdf) left.push({ kind: 'healpix', order: tile.order, cell: tile.cell });
    else {
      left.push({ kind: 'circle', circle });
      exact = false;
    }
    right.push({ kind: 'circle', circle: widened(circle, widen) });
  }
  if (regionCircle !== null) {
    left.push({ kind: 'circle', circle: regionCircle });
    right.push({ kind: 'circle', circle: widened(regionCircle, widen) });
  }
  return { tile, left, leftExact: exact, right };
}

/** Whether a position lies in the region: in its cone when given, else in its MOC. */
export function inRegion(region: CrossmatchRegion, raDeg: number, decDeg: number): boolean {
  if (region.cone !== null) return separationDeg(region.cone.ra, region.cone.dec, raDeg, decDeg) <= region.cone.radiusDeg;
  return region.moc.containsPoint(raDeg, decDeg);
}

/** Whether a left row at this position belongs to the tile: in the region and in the tile's own cell. */
export function leftInTile(tile: Tile, region: CrossmatchRegion, raDeg: number, decDeg: number): boolean {
  if (!inRegion(region, raDeg, decDeg)) return false;
  return tile.order === null || cellOf(tile.order, raDeg, decDeg) === tile.cell;
}

/** Whether a position satisfies every circle of an area list (healpix areas by their cell). */
export function inAreas(areas: readonly AdqlArea[], raDeg: number, decDeg: number): boolean {
  return areas.every((a) =>
    a.kind === 'circle'
      ? separationDeg(a.circle.ra, a.circle.dec, raDeg, decDeg) <= a.circle.radiusDeg
      : cellOf(a.order, raDeg, decDeg) === a.cell);
}

/** Great-circle separation in degrees (atan2 form: stable at tiny and near-antipodal angles). */
export function separationDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  return toDeg(angle(radecToVec(ra1, dec1), radecToVec(ra2, dec2)));
}

function widened(c: ConeDeg, byDeg: number): ConeDeg {
  return { ra: c.ra, dec: c.dec, radiusDeg: Math.min(180, c.radiusDeg + byDeg) };
}

function angle(a: Vec3, b: Vec3): number {
  const cx = a[1] * b[2] - a[2] * b[1];
  const cy = a[2] * b[0] - a[0] * b[2];
  const cz = a[0] * b[1] - a[1] * b[0];
  return Math.atan2(Math.hypot(cx, cy, cz), a[0] * b[0] + a[1] * b[1] + a[2] * b[2]);
}

function toDeg(rad: number): number {
  return (rad * 180) / Math.PI;
}

function toRaDec(v: ArrayLike<number>): { ra: number; dec: number } {
  let ra = toDeg(Math.atan2(v[1], v[0]));
  if (ra < 0) ra += 360;
  const dec = toDeg(Math.atan2(v[2], Math.hypot(v[0], v[1])));
  return { ra, dec };
}
