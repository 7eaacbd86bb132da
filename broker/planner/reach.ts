/**
 * Bounding caps of replica coverage. A plan tests each replica of a requested dataset against
 * the region; one distance test against a cap rules out the far ones before their MOC is walked.
 * The caps are built with the snapshot, once per distinct MOC.
 */
import type { Cone } from '../../registry/coverage/cone.js';
import { capCells, capOf } from '../../registry/coverage/cap.js';
import { MAX_PIXRAD, chord2 } from '../../registry/coverage/healpix.js';
import type { SMoc } from '../../registry/coverage/moc.js';

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

/** The reach of a MOC, or null when there is nothing to bound (empty, whole sky, or no useful centre). */
export function reachOf(moc: SMoc): Reach | null {
  if (moc.isEmpty() || moc.isFullSky()) return null;
  // Order 0 has twelve cells, so some order always has few enough.
  const { order, cells } = capCells(moc, 0);
  const cap = capOf(order, cells!);
  if (cap === undefined) return null;
  const [x, y, z] = cap.centre;
  // Cells of maxOrder have their centres among those summed; coarser cells hold them within their own radius.
  const inCell = order < moc.maxOrder ? MAX_PIXRAD[order] : 0;
  return Object.freeze({ x, y, z, margin: cap.radius + inCell + MAX_PIXRAD[moc.maxOrder] + PAD });
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
