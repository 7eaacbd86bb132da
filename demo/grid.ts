/**
 * A neighbour index over sky positions: points hashed by cubes of their unit vectors, so a
 * search "everything within r of here" looks at 27 cubes and is correct across RA 0/360 and
 * at the poles without special cases. Used by the generator to keep its truth exact.
 */
import { separationDeg, unitVector } from './sky.js';

// Three cube indices share one double key: each must fit 17 bits (|i| < 65536), so a cube
// edge is at least 1/65536 of the unit radius; a larger edge is only slower, never wrong.
const OFFSET = 65536;
const SPAN = 2 * OFFSET;
const MIN_EDGE = 1 / (OFFSET - 2);

/** Positions kept by cube; `within` finds those closer than the radius it was built for. */
export class SkyGrid {
  private readonly cells = new Map<number, number[]>();
  private readonly edge: number;
  readonly ra: number[] = [];
  readonly dec: number[] = [];

  /** An empty grid for searches up to `maxRadiusDeg`. */
  constructor(maxRadiusDeg: number) {
    // The chord of the search radius bounds how far apart two unit vectors within it can be.
    const chord = 2 * Math.sin((maxRadiusDeg * Math.PI) / 360);
    this.edge = Math.max(chord, MIN_EDGE);
  }

  /** Adds a point; returns its index. */
  add(ra: number, dec: number): number {
    const i = this.ra.length;
    this.ra.push(ra);
    this.dec.push(dec);
    const [x, y, z] = this.cube(ra, dec);
    const key = keyOf(x, y, z);
    const list = this.cells.get(key);
    if (list) list.push(i);
    else this.cells.set(key, [i]);
    return i;
  }

  /** Indices of points closer than `radiusDeg` (≤ the grid's radius) to (ra, dec), with `except` left out. */
  within(ra: number, dec: number, radiusDeg: number, except = -1): number[] {
    const [cx, cy, cz] = this.cube(ra, dec);
    const out: number[] = [];
    for (let dx = -1; dx <= 1; dx++) {
      for (let dy = -1; dy <= 1; dy++) {
        for (let dz = -1; dz <= 1; dz++) {
          const list = this.cells.get(keyOf(cx + dx, cy + dy, cz + dz));
          if (!list) continue;
          for (const i of list) {
            if (i !== except && separationDeg(ra, dec, this.ra[i], this.dec[i]) < radiusDeg) out.push(i);
          }
        }
      }
    }
    return out;
  }

  private cube(ra: number, dec: number): [number, number, number] {
    const v = unitVector(ra, dec);
    return [Math.floor(v[0] / this.edge), Math.floor(v[1] / this.edge), Math.floor(v[2] / this.edge)];
  }
}

function keyOf(x: number, y: number, z: number): number {
  return ((x + OFFSET) * SPAN + (y + OFFSET)) * SPAN + (z + OFFSET);
}
