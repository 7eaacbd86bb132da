/**
 * Cross-match tiling (broker/threads/tiles.ts): tile shares against brute force, the circle
 * around a cell against sampled points, and the tile-edge rule as a property over random cones
 * (RA 0/360 and both poles included): every left point of the region is in exactly one tile's
 * left set and inside that tile's left ADQL read, and every right point within the radius of it
 * is inside the tile's right (widened) read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cellCenter, nestToFxy, radecToVec, vec3, type Vec3 } from '../../registry/coverage/healpix.js';
import { SMoc } from '../../registry/coverage/moc.js';
import {
  WHOLE_REGION,
  cellCircle,
  cellOf,
  inAreas,
  inRegion,
  leftInTile,
  separationDeg,
  tileCells,
  tileReads,
  tileStats,
  type Tile,
} from '../../broker/threads/tiles.js';
import type { CrossmatchRegion } from '../../broker/threads/types.js';
import { seededRandom } from '../support/random.js';

const DEG = Math.PI / 180;

function toRaDec(v: ArrayLike<number>): [number, number] {
  let ra = Math.atan2(v[1], v[0]) / DEG;
  if (ra < 0) ra += 360;
  if (ra >= 360) ra -= 360;
  return [ra, Math.atan2(v[2], Math.hypot(v[0], v[1])) / DEG];
}

/** The position at `distDeg` from (ra, dec) in direction `bearing` (radians). */
function offset(ra: number, dec: number, distDeg: number, bearing: number): [number, number] {
  const c = radecToVec(ra, dec);
  const e1 = Math.abs(c[2]) < 0.9 ? Float64Array.of(-c[1], c[0], 0) : Float64Array.of(0, -c[2], c[1]);
  const n1 = Math.hypot(e1[0], e1[1], e1[2]);
  for (let k = 0; k < 3; k++) e1[k] /= n1;
  const e2 = Float64Array.of(c[1] * e1[2] - c[2] * e1[1], c[2] * e1[0] - c[0] * e1[2], c[0] * e1[1] - c[1] * e1[0]);
  const t = distDeg * DEG;
  const out: Vec3 = vec3();
  for (let k = 0; k < 3; k++) out[k] = Math.cos(t) * c[k] + Math.sin(t) * (Math.cos(bearing) * e1[k] + Math.sin(bearing) * e2[k]);
  return toRaDec(out);
}

function coneRegion(ra: number, dec: number, radiusDeg: number, order: number): CrossmatchRegion {
  return { moc: SMoc.fromCone(ra, dec, radiusDeg, order), cone: { ra, dec, radiusDeg } };
}

describe('tileStats and tileCells', () => {
  it('list the cells touching the region with shares that sum to one and match a per-cell count', () => {
    for (const [ra, dec, r] of [[0.2, 1, 2], [180, 89.5, 1.5], [359.9, -60, 4], [45, 0, 0.3]]) {
      const region = SMoc.fromCone(ra, dec, r, 10);
      for (const order of [0, 2, 4, 6, 8]) {
        const cells = tileCells(region, order);
        const st = tileStats(region, order);
        expect(st.count).toBe(cells.length);
        const shares = cells.map((c) => (st.partial.get(c) ?? st.fullShare));
        expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
        // Brute force: the region's share in each cell from a MOC intersection.
        const whole = region.skyFraction();
        for (const c of cells) {
          const own = region.intersection(SMoc.fromCells(order, [c])).skyFraction() / whole;
          expect(st.partial.get(c) ?? st.fullShare).toBeCloseTo(own, 12);
        }
        expect(st.maxShare).toBeCloseTo(Math.max(...shares), 12);
        expect(new Set(cells).size).toBe(cells.length);
      }
    }
  });

  it('give no tiles for an empty region', () => {
    expect(tileCells(SMoc.empty(5), 3)).toEqual([]);
    expect(tileStats(SMoc.empty(5), 3).count).toBe(0);
  });
});

describe('cellCircle', () => {
  it('holds every sampled point of the cell, at the poles, on RA 0 and in the equatorial belt', () => {
    const rnd = seededRandom(11);
    for (const order of [0, 1, 3, 6, 9, 12]) {
      for (const [ra, dec] of [[0, 89.999], [0, -89.999], [0.0001, 0], [359.9999, 30], [123, -41.8], [45, 41.81]]) {
        const cell = cellOf(order, ra, dec);
        const circle = cellCircle(order, cell);
        const { f, x, y } = nestToFxy(order, cell);
        const [cra, cdec] = toRaDec(cellCenter(order, f, x, y, vec3()));
        let kept = 0;
        for (let i = 0; i < 4000 && kept < 400; i++) {
          // Points around the centre out to twice the circle; keep those in the cell.
          const [pra, pdec] = offset(cra, cdec, circle.radiusDeg * 1.3 * Math.sqrt(rnd()), rnd() * 2 * Math.PI);
          if (cellOf(order, pra, pdec) !== cell) continue;
          kept++;
          expect(separationDeg(circle.ra, circle.dec, pra, pdec)).toBeLessThanOrEqual(circle.radiusDeg);
        }
        expect(kept).toBeGreaterThan(50);
        // Not absurdly loose: within 1.5× of the sampled farthest point is typical; 2× is a hard bound.
        expect(circle.radiusDeg).toBeLessThan(2 * (58.6 / 2 ** order));
      }
    }
  });
});

/** Check the two tile rules for one left point and one right point `sepDeg` from it. */
function checkPair(region: CrossmatchRegion, order: number | null, radiusArcsec: number, left: [number, number], bearing: number, frac: number): void {
  const tiles: Tile[] = order === null ? [WHOLE_REGION] : tileCells(region.moc, order).map((cell) => ({ order, cell }));
  const owners = tiles.filter((t) => leftInTile(t, region, left[0], left[1]));
  expect(owners.length).toBe(1);
  const tile = owners[0];
  for (const healpixUdf of [false, true]) {
    const reads = tileReads(tile, region, radiusArcsec, { healpixUdf });
    expect(inAreas(reads.left, left[0], left[1])).toBe(true);
    const right = offset(left[0], left[1], (radiusArcsec / 3600) * frac, bearing);
    // Degrees near RA 180 carry ~1e-14° of rounding, so only points truly within the radius count.
    if (separationDeg(left[0], left[1], right[0], right[1]) > radiusArcsec / 3600) continue;
    expect(inAreas(reads.right, right[0], right[1])).toBe(true);
  }
}

describe('tile edges (property)', () => {
  const centre = fc.oneof(
    fc.tuple(fc.double({ min: 0, max: 360, maxExcluded: true, noNaN: true }), fc.double({ min: -90, max: 90, noNaN: true })),
    // RA 0/360 and the poles, where the cells and the circles wrap.
    fc.tuple(fc.constantFrom(0, 359.99999, 0.00001, 180), fc.double({ min: -90, max: 90, noNaN: true })),
    fc.tuple(fc.double({ min: 0, max: 360, maxExcluded: true, noNaN: true }), fc.constantFrom(90, -90, 89.995, -89.995, 0)),
  );

  it('a left point of a cone region is in exactly one tile, inside its left read, and its right neighbours inside the right read', () => {
    fc.assert(
      fc.property(
        centre,
        fc.double({ min: 0.01, max: 3, noNaN: true }),
        fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 12 })),
        fc.double({ min: 0.05, max: 60, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
        ([ra, dec], radiusDeg, order, radiusArcsec, u, b1, frac, b2) => {
          const region = coneRegion(ra, dec, radiusDeg, 10);
          // Tiles finer than order 9 over a 3° cone are many; keep the walk small.
          const o = order !== null && order > 8 && radiusDeg > 0.3 ? 8 : order;
          const left = offset(ra, dec, radiusDeg * Math.sqrt(u) * 0.999999, b1);
          fc.pre(inRegion(region, left[0], left[1]));
          checkPair(region, o, radiusArcsec, left, b2, frac);
        },
      ),
      { numRuns: 300, seed: 20261123 },
    );
  });

  it('points right on tile edges: a left point beside a cell corner keeps all its right neighbours', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 12 * 4 ** 3 - 1 }),
        fc.double({ min: 0.05, max: 60, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
        fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }),
        (order, seedCell, radiusArcsec, frac, b1, b2) => {
          // A corner of an order-3 cell (shared with its neighbours at every finer order).
          const { f, x, y } = nestToFxy(3, seedCell);
          const [cra, cdec] = toRaDec(cellCenter(3, f, x, y, vec3()));
          const c3 = cellCircle(3, seedCell);
          const corner = offset(cra, cdec, c3.radiusDeg * 0.7, b1);
          const region: CrossmatchRegion = { moc: SMoc.fromCone(corner[0], corner[1], 0.5, 9), cone: null };
          const left = offset(corner[0], corner[1], 1e-6, b2);
          fc.pre(inRegion(region, left[0], left[1]));
          checkPair(region, Math.min(order, 8), radiusArcsec, left, b2 + 1, frac);
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('a MOC region (cells, no cone) follows the same rules', () => {
    const rnd = seededRandom(5);
    const moc = SMoc.fromCells(6, [cellOf(6, 0.1, 0.1), cellOf(6, 359.9, 0.1), cellOf(6, 0, 89.99), cellOf(6, 200, -89.99)]);
    const region: CrossmatchRegion = { moc, cone: null };
    const seeds: [number, number][] = [[0.1, 0.1], [359.9, 0.1], [0, 89.99], [200, -89.99]];
    for (let i = 0; i < 400; i++) {
      const [sra, sdec] = seeds[i % 4];
      const left = offset(sra, sdec, 0.6 * rnd(), rnd() * 2 * Math.PI);
      if (!inRegion(region, left[0], left[1])) continue;
      for (const order of [null, 0, 4, 6, 9]) checkPair(region, order, 1 + 59 * rnd(), left, rnd() * 2 * Math.PI, rnd());
    }
  });
});
