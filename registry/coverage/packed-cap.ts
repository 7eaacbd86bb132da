/**
 * Bounding caps stored as 32-bit floats: 4 per coverage (unit centre x, y, z and a margin; NaN
 * margin: no cap). A cap only rules out far cones before a coverage's ranges are walked, so it
 * may be looser than the exact one but never tighter: the margin is rounded up, and the test
 * allows for the rounding of the centre. Half the bytes of doubles: a million coverages' caps
 * cost 16 MB, which pays for the planner keeping a second copy next to each dataset's replicas
 * (broker/planner/replica-facts.ts), where a plan reads them in one sweep.
 */
import type { Cone } from './cone.js';

/**
 * Radians added to the limit of the test for the rounding of the centre: each coordinate of a
 * unit vector rounds to a float32 within 2^-25, so the stored centre lies within √3·2^-25
 * (5.2e-8) of the computed one; the rest covers rounding in the test's own sums.
 */
const CENTRE_SLACK = 1e-7;

const bits = new Float32Array(1);
const word = new Int32Array(bits.buffer);

/** The least float32 not below `x` (x itself when it is one; NaN stays NaN). */
export function roundUp32(x: number): number {
  const f = Math.fround(x);
  if (!(f < x)) return f;
  // f is finite and below x: its successor (one unit in the last place toward +∞) is not.
  bits[0] = f;
  word[0] += f >= 0 ? 1 : -1;
  return bits[0];
}

/** Store a cap (or none, with NaN margin) as cap `i` of `caps`; the margin is rounded up. */
export function storeCap(caps: Float32Array, i: number, x: number, y: number, z: number, margin: number): void {
  caps[4 * i] = x;
  caps[4 * i + 1] = y;
  caps[4 * i + 2] = z;
  caps[4 * i + 3] = roundUp32(margin);
}

/**
 * False only when the cone lies farther than its radius plus the margin from the cap's centre,
 * allowing for the centre's rounding: then no covered cell is an inclusive cell of the cone (see
 * packed-builder.ts's cap). True when cap `i` is none.
 */
export function capMayTouch(caps: Float32Array, i: number, cone: Cone): boolean {
  const margin = caps[4 * i + 3];
  if (margin !== margin) return true;
  const reach = cone.radius + margin;
  // Beyond π every point of the sphere is in reach (and the chord stops growing).
  if (reach >= Math.PI) return true;
  const limit = 2 * Math.sin(reach / 2) + CENTRE_SLACK;
  const v = cone.v;
  const dx = caps[4 * i] - v[0];
  const dy = caps[4 * i + 1] - v[1];
  const dz = caps[4 * i + 2] - v[2];
  return dx * dx + dy * dy + dz * dz <= limit * limit;
}
