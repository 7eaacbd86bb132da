/**
 * Pairs planted across HEALPix cell edges: a tiled cross-match must neither lose nor double
 * count a pair whose two members fall in different cells. An edge of an order-k cell is an
 * edge at every finer order too, so pairs across coarse edges test every finer tiling.
 */
import { nestIndex, vecToCell } from '../registry/coverage/healpix.js';
import type { Random } from './random.js';
import { inBox, offsetPosition, unitVector, type SkyBox } from './sky.js';

/** Two positions less than the asked separation apart, in different cells of `order`. */
export interface EdgePair {
  a: { ra: number; dec: number };
  b: { ra: number; dec: number };
}

/** NESTED index of the cell holding (ra, dec) at `order` (≤ 24). */
export function cellAt(order: number, ra: number, dec: number): number {
  const { f, x, y } = vecToCell(order, unitVector(ra, dec));
  return nestIndex(order, f, x, y);
}

/**
 * Finds a cell edge of `order` inside `box` (by bisection along a great circle between two
 * points in different cells) and places two points `sepDeg` apart straddling it; undefined
 * when no edge of that order was met in the box after many tries.
 */
export function edgePair(order: number, box: SkyBox, sepDeg: number, random: Random, start: () => { ra: number; dec: number }): EdgePair | undefined {
  const cellSizeDeg = 58.6 / 2 ** order;
  const span = Math.min(box.decMax - box.decMin, 10);
  const reach = Math.min(span / 2, 3 * cellSizeDeg);
  for (let attempt = 0; attempt < 400; attempt++) {
    const a = start();
    const pa = random() * 360;
    const far = offsetPosition(a.ra, a.dec, reach, pa);
    const home = cellAt(order, a.ra, a.dec);
    if (!inBox(box, far.ra, far.dec) || cellAt(order, far.ra, far.dec) === home) continue;
    let lo = 0;
    let hi = reach;
    while (hi - lo > sepDeg * 1e-3) {
      const mid = (lo + hi) / 2;
      const p = offsetPosition(a.ra, a.dec, mid, pa);
      if (cellAt(order, p.ra, p.dec) === home) lo = mid;
      else hi = mid;
    }
    const edge = (lo + hi) / 2;
    const before = sepDeg * (0.1 + 0.8 * random());
    const first = offsetPosition(a.ra, a.dec, edge - before, pa);
    const second = offsetPosition(a.ra, a.dec, edge - before + sepDeg, pa);
    if (!inBox(box, first.ra, first.dec) || !inBox(box, second.ra, second.dec)) continue;
    if (cellAt(order, first.ra, first.dec) === cellAt(order, second.ra, second.dec)) continue;
    return random() < 0.5 ? { a: first, b: second } : { a: second, b: first };
  }
  return undefined;
}
