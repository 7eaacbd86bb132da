/**
 * Bounding caps of MOCs: the centre of a MOC's cell centres at a moderate order and the widest
 * angle from it to any of them, so one distance test can rule out a far cone before the MOC
 * itself is walked. Used by the coverage index and the planner's per-replica reach.
 */
import { MAX_ORDER, cellCenter, nestToFxy, vec3 } from './healpix.js';
import type { SMoc } from './moc.js';

/** Finest order whose cell centres describe a cap, and most cells summed to find it. */
const CAP_ORDER = 10;
const CAP_CELLS = 256;

/** The cells of `order` the ranges touch, ascending, or undefined once there are more than `limit`. */
export function cellsAt(ranges: BigInt64Array, order: number, limit: number): number[] | undefined {
  const shift = BigInt(2 * (MAX_ORDER - order));
  const size = 1n << shift;
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const end = Number((ranges[i + 1] + size - 1n) >> shift);
    // A cell shared with the previous range is already listed.
    for (let c = Math.max(Number(ranges[i] >> shift), out.length > 0 ? out[out.length - 1] + 1 : 0); c < end; c++) {
      if (out.push(c) > limit) return undefined;
    }
  }
  return out;
}

/**
 * The cells a cap is built from: those of the finest order from min(maxOrder, 10) down to
 * `minOrder` that has at most 256 of them (cells undefined when even `minOrder` has more).
 */
export function capCells(moc: SMoc, minOrder: number): { order: number; cells: number[] | undefined } {
  let order = Math.min(moc.maxOrder, CAP_ORDER);
  let cells = cellsAt(moc.ranges, order, CAP_CELLS);
  while (cells === undefined && order > minOrder) cells = cellsAt(moc.ranges, --order, CAP_CELLS);
  return { order, cells };
}

/**
 * The unit centre of the centres of `cells` at `order` and the widest angle (radians) from it
 * to one of them; undefined when the centres surround the sphere and have no useful centre.
 */
export function capOf(order: number, cells: readonly number[]): { centre: Float64Array; radius: number } | undefined {
  const centres = cells.map((c) => {
    const { f, x, y } = nestToFxy(order, c);
    return cellCenter(order, f, x, y, vec3());
  });
  const centre = vec3();
  for (const c of centres) for (let k = 0; k < 3; k++) centre[k] += c[k];
  const norm = Math.hypot(centre[0], centre[1], centre[2]);
  if (norm < 1e-6) return undefined;
  for (let k = 0; k < 3; k++) centre[k] /= norm;
  let radius = 0;
  for (const c of centres) radius = Math.max(radius, 2 * Math.asin(Math.min(1, Math.hypot(c[0] - centre[0], c[1] - centre[1], c[2] - centre[2]) / 2)));
  return { centre, radius };
}
