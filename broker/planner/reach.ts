/**
 * Bounding caps of replica coverage. A plan tests each replica of a requested dataset against
 * the region; one distance test against a cap rules out the far ones before their MOC is walked.
 * The caps are built with the snapshot, once per distinct MOC.
 */
import type { Cone } from '../../registry/coverage/cone.js';
import { MAX_ORDER, MAX_PIXRAD, cellCenter, chord2, nestToFxy, vec3 } from '../../registry/coverage/healpix.js';
import type { SMoc } from '../../registry/coverage/moc.js';

/** Finest order whose cell centres describe a cap, and most cells summed to find it. */
const CAP_ORDER = 10;
const CAP_CELLS = 256;
/** Radians added so that rounding in the centre and distance sums never prunes a true match. */
const PAD = 1e-9;

/** A cap holding every cell centre of a MOC at its maxOrder: unit centre, and its radius plus one such cell's radius. */
export interface Reach {
  readonly x: number;
  readonly y: number;
  readonly z: number;
  /** Radians from the centre within which a cone's inclusive test can reach a covered cell, less the cone's radius. */
  readonly margin: number;
}

/** The cells of `order` the ranges touch, ascending, or undefined once there are more than `limit`. */
function cellsAt(ranges: BigInt64Array, order: number, limit: number): number[] | undefined {
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

/** The reach of a MOC, or null when there is nothing to bound (empty, whole sky, or no useful centre). */
export function reachOf(moc: SMoc): Reach | null {
  if (moc.isEmpty() || moc.isFullSky()) return null;
  let order = Math.min(moc.maxOrder, CAP_ORDER);
  let cells = cellsAt(moc.ranges, order, CAP_CELLS);
  // Order 0 has twelve cells, so the loop always ends.
  while (cells === undefined) cells = cellsAt(moc.ranges, --order, CAP_CELLS);
  const centres = cells.map((c) => {
    const { f, x, y } = nestToFxy(order, c);
    return cellCenter(order, f, x, y, vec3());
  });
  let sx = 0;
  let sy = 0;
  let sz = 0;
  for (const c of centres) {
    sx += c[0];
    sy += c[1];
    sz += c[2];
  }
  const norm = Math.hypot(sx, sy, sz);
  if (norm < 1e-6) return null;
  const x = sx / norm;
  const y = sy / norm;
  const z = sz / norm;
  let radius = 0;
  for (const c of centres) radius = Math.max(radius, 2 * Math.asin(Math.min(1, Math.hypot(c[0] - x, c[1] - y, c[2] - z) / 2)));
  // Cells of maxOrder have their centres among those summed; coarser cells hold them within their own radius.
  const inCell = order < moc.maxOrder ? MAX_PIXRAD[order] : 0;
  return Object.freeze({ x, y, z, margin: radius + inCell + MAX_PIXRAD[moc.maxOrder] + PAD });
}

/**
 * False only when no covered cell of the MOC can be among the cone's inclusive cells, so
 * SMoc.intersectsConeOf would say false too: every cell centre at maxOrder lies within the cap,
 * and the inclusive test needs one within radius + MAX_PIXRAD[maxOrder] of the cone's centre.
 */
export function mayTouch(reach: Reach, cone: Cone): boolean {
  const dx = reach.x - cone.v[0];
  const dy = reach.y - cone.v[1];
  const dz = reach.z - cone.v[2];
  return dx * dx + dy * dy + dz * dz <= chord2(cone.radius + reach.margin);
}
