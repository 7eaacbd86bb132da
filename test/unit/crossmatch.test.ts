/**
 * The matcher against brute force: random catalogues (fast-check) and planted pairs across
 * RA 0/360, near both poles, on HEALPix cell edges and corners, on zone edges, and exact ties;
 * separation accuracy; bad arguments.
 */
import * as hp from '@hscmap/healpix';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crossmatch, separationArcsec } from '../../broker/crossmatch/index.js';
import { zoneHeightDeg } from '../../broker/crossmatch/zones.js';
import { radiusGeometry } from '../../broker/crossmatch/sphere.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { seededRandom } from '../support/random.js';
import { batches, bruteForce, keys, offset, runMatch, type Cat } from './crossmatch-support.js';

const MODES = ['ALL', 'BEST'] as const;

/** Random rows clustered around a few centres (so pairs exist), anywhere on the sphere including the poles and RA 0. */
function clustered(rnd: () => number, n: number, centres: Array<[number, number]>, spreadArcsec: number): Cat {
  const c: Cat = { ra: [], dec: [], id: [] };
  for (let i = 0; i < n; i++) {
    const [ra, dec] = centres[Math.floor(rnd() * centres.length)];
    const [a, d] = offset(ra, dec, rnd() * spreadArcsec, rnd() * 2 * Math.PI);
    c.ra.push(a);
    c.dec.push(d);
    c.id!.push(BigInt(Math.floor(rnd() * 1e6)) * 1000n + BigInt(i));
  }
  return c;
}

const SPECIAL_CENTRES: Array<[number, number]> = [
  [0, 0], [359.9999, 10], [0.00005, -30], [180, 89.995], [37, -89.995], [90, 90], [0, -90], [123.4, 45.6],
];

describe('crossmatch against brute force', () => {
  it('gives the brute-force pair sets for ALL and BEST on random catalogues (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 250 }),
        fc.integer({ min: 0, max: 250 }),
        fc.double({ min: 0.05, max: 60, noNaN: true }),
        async (seed, nl, nr, radius) => {
          const rnd = seededRandom(seed);
          const centres: Array<[number, number]> = [SPECIAL_CENTRES[seed % SPECIAL_CENTRES.length], [rnd() * 360, Math.asin(2 * rnd() - 1) / (Math.PI / 180)]];
          const spread = radius * (1 + rnd() * 20);
          const left = clustered(rnd, nl, centres, spread);
          const right = clustered(rnd, nr, centres, spread);
          for (const mode of MODES) {
            const got = await runMatch(left, right, { radiusArcsec: radius, mode }, 1 + Math.floor(rnd() * 100));
            const want = bruteForce(left, right, radius, mode);
            expect(keys(got)).toEqual(keys(want));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('finds planted pairs across RA 0/360, within 0.01° of each pole, on HEALPix cell edges and corners and on zone edges', async () => {
    const radius = 1;
    const left: Cat = { ra: [], dec: [] };
    const right: Cat = { ra: [], dec: [] };
    const plant = (ra: number, dec: number, sep: number, pa: number): void => {
      const [a, d] = offset(ra, dec, sep, pa);
      left.ra.push(ra); left.dec.push(dec);
      right.ra.push(a); right.dec.push(d);
    };
    const rnd = seededRandom(7);
    // RA 0/360, both ways, at several declinations.
    for (const dec of [0, 45, -60, 80]) for (const pa of [Math.PI / 2, -Math.PI / 2, Math.PI / 4]) plant(360 - 0.1 / 3600, dec, 0.9, pa), plant(0.05 / 3600, dec, 0.9, -pa);
    // Within 0.01° of each pole, including pairs on opposite sides of it.
    for (const pole of [90, -90]) {
      for (let k = 0; k < 20; k++) {
        const dec = pole - Math.sign(pole) * rnd() * 0.01;
        plant(rnd() * 360, dec, 0.9 * rnd(), rnd() * 2 * Math.PI);
      }
      plant(10, pole - Math.sign(pole) * 0.4 / 3600, 0.8, 0); // straight over the pole
      left.ra.push(0); left.dec.push(pole); right.ra.push(200); right.dec.push(pole - Math.sign(pole) * 0.5 / 3600);
    }
    // HEALPix cell corners and edge midpoints (nested, several orders).
    for (const order of [3, 8, 11]) {
      const nside = 2 ** order;
      for (let k = 0; k < 10; k++) {
        const ipix = Math.floor(rnd() * hp.nside2npix(nside));
        const corners = hp.corners_nest(nside, ipix);
        for (let c = 0; c < corners.length; c++) {
          const v = corners[c];
          const w = corners[(c + 1) % corners.length];
          for (const p of [v, [(v[0] + w[0]) / 2, (v[1] + w[1]) / 2, (v[2] + w[2]) / 2]]) {
            const norm = Math.hypot(p[0], p[1], p[2]);
            const dec = Math.asin(p[2] / norm) * 180 / Math.PI;
            let ra = Math.atan2(p[1], p[0]) * 180 / Math.PI;
            if (ra < 0) ra += 360;
            plant(ra, dec, 0.9, rnd() * 2 * Math.PI);
          }
        }
      }
    }
    // Zone edges of the matcher's own partition.
    const h = zoneHeightDeg(radiusGeometry(radius));
    for (let k = 0; k < 20; k++) {
      const z = Math.floor(rnd() * (180 / h));
      plant(rnd() * 360, -90 + z * h, 0.9, 0);
      plant(rnd() * 360, -90 + z * h, 0.9, Math.PI);
    }
    for (const mode of MODES) {
      const got = await runMatch(left, right, { radiusArcsec: radius, mode });
      const want = bruteForce(left, right, radius, mode);
      expect(keys(got)).toEqual(keys(want));
      // Every planted pair (left i with right i) is found; in BEST every left row has a partner
      // (planted pairs share positions, so its nearest may be another planted right row).
      const found = new Set(mode === 'ALL' ? keys(got) : got.map((p) => String(p.left)));
      for (let i = 0; i < left.ra.length; i++) expect(found.has(mode === 'ALL' ? `${i}-${i}` : String(i)), `planted pair ${i} (${left.ra[i]}, ${left.dec[i]})`).toBe(true);
    }
  });

  it('breaks exact BEST ties towards the smaller right id (or ordinal without ids)', async () => {
    const d = 0.5 / 3600;
    // Right rows mirror each other about the left row's declination: identical separations.
    const left: Cat = { ra: [10, 359.9999], dec: [0, 20], id: [1n, 2n] };
    const right: Cat = { ra: [10, 10, 359.9999, 359.9999, 359.9999], dec: [d, -d, 20, 20, 20 + d], id: [50n, 40n, 9n, 7n, 1n] };
    const got = await runMatch(left, right, { radiusArcsec: 1, mode: 'BEST' });
    expect(got.map((p) => [p.left, p.right])).toEqual([[0, 1], [1, 3]]);
    const noIds = await runMatch({ ra: left.ra, dec: left.dec }, { ra: right.ra, dec: right.dec }, { radiusArcsec: 1, mode: 'BEST' });
    expect(noIds.map((p) => [p.left, p.right])).toEqual([[0, 0], [1, 2]]);
    expect(keys(got)).toEqual(keys(bruteForce(left, right, 1, 'BEST')));
  });

  it('keeps ordinals across batches and never matches rows with a NULL position', async () => {
    const left: Cat = { ra: [NaN, 10, 20, Infinity, 30], dec: [0, 0, 0, 0, NaN] };
    const right: Cat = { ra: [30, 20, 10, NaN], dec: [0, 0.1 / 3600, 0, 0] };
    const got = await runMatch(left, right, { radiusArcsec: 1 }, 2);
    expect(got.map((p) => [p.left, p.right])).toEqual([[1, 2], [2, 1]]);
  });

  it('accepts sync and async iterables and empty sides', async () => {
    async function* gen(): AsyncGenerator<{ ra: Float64Array; dec: Float64Array }> {
      yield { ra: Float64Array.of(1), dec: Float64Array.of(1) };
    }
    const pairs: number[] = [];
    for await (const b of crossmatch(gen(), [{ ra: Float64Array.of(1), dec: Float64Array.of(1) }], { radiusArcsec: 1 })) pairs.push(...b.right);
    expect(pairs).toEqual([0]);
    for await (const b of crossmatch([], gen(), { radiusArcsec: 1 })) expect.fail(`no pairs expected, got ${b.left.length}`);
  });
});

describe('separation accuracy', () => {
  it('is exact to 1e-6″ along a meridian, the equator, over the poles and against Vincenty', () => {
    const rnd = seededRandom(11);
    for (let k = 0; k < 2000; k++) {
      const s = rnd() * 60; // arcsec
      const ra = rnd() * 360;
      const dec = -89 + rnd() * 178;
      const dec2 = dec + s / 3600;
      expect(Math.abs(separationArcsec(ra, dec, ra, dec2) - (dec2 - dec) * 3600)).toBeLessThan(1e-6);
      const ra2 = ra + s / 3600;
      expect(Math.abs(separationArcsec(ra, 0, ra2, 0) - (ra2 - ra) * 3600)).toBeLessThan(1e-6);
      const e = rnd() * 30; // over the pole: RA differs by 180°
      expect(Math.abs(separationArcsec(ra, 90 - e / 3600, ra + 180, 90 - e / 3600) - 2 * ((90 - (90 - e / 3600)) * 3600))).toBeLessThan(1e-6);
      // Across RA 0/360 equals the same pair shifted away from it.
      const t = rnd() * 10 / 3600;
      expect(Math.abs(separationArcsec(360 - t, dec, t, dec) - separationArcsec(180 - t, dec, 180 + t, dec))).toBeLessThan(1e-6);
      // Vincenty's atan2 form (stable everywhere) as an independent reference.
      const [a2, d2] = offset(ra, dec, s, rnd() * 2 * Math.PI);
      expect(Math.abs(separationArcsec(ra, dec, a2, d2) - vincentyArcsec(ra, dec, a2, d2))).toBeLessThan(1e-6);
    }
    expect(separationArcsec(12, 34, 12, 34)).toBe(0);
    expect(Math.abs(separationArcsec(0, 0, 0, 1e-9 / 3600) - 1e-9)).toBeLessThan(1e-15);
  });

  it('reports each pair with its separation from the same formula', async () => {
    const rnd = seededRandom(5);
    const left = clustered(rnd, 300, [[0, 89.999]], 5);
    const right = clustered(rnd, 300, [[0, 89.999]], 5);
    const got = await runMatch(left, right, { radiusArcsec: 2 });
    expect(got.length).toBeGreaterThan(0);
    for (const p of got) expect(Math.abs(p.sep - vincentyArcsec(left.ra[p.left], left.dec[p.left], right.ra[p.right], right.dec[p.right]))).toBeLessThan(1e-6);
  });
});

function vincentyArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const D = Math.PI / 180;
  const dl = (ra2 - ra1) * D;
  const p1 = dec1 * D;
  const p2 = dec2 * D;
  const num = Math.hypot(Math.cos(p2) * Math.sin(dl), Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl));
  const den = Math.sin(p1) * Math.sin(p2) + Math.cos(p1) * Math.cos(p2) * Math.cos(dl);
  return Math.atan2(num, den) / D * 3600;
}

describe('bad arguments', () => {
  async function failure(run: () => AsyncGenerator<unknown>): Promise<unknown> {
    try {
      for await (const _ of run()) { /* drain */ }
    } catch (err) {
      return err;
    }
    return undefined;
  }

  it.each([0, -1, 60.0001, NaN, Infinity])('refuses radiusArcsec %s with INVALID_ARGUMENT naming the field', async (r) => {
    const err = await failure(() => crossmatch([], [], { radiusArcsec: r }));
    expect(isConstellationError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'CONSTELLATION_E_INVALID_ARGUMENT', violations: [{ path: 'radiusArcsec' }] });
  });

  it('accepts exactly 60″ and refuses a non-number radius, a bad mode, memoryMb and declination', async () => {
    expect(await failure(() => crossmatch([], [], { radiusArcsec: 60 }))).toBeUndefined();
    const cases: Array<[() => AsyncGenerator<unknown>, string]> = [
      [() => crossmatch([], [], JSON.parse('{"radiusArcsec":"1"}')), 'radiusArcsec'],
      [() => crossmatch([], [], JSON.parse('{"radiusArcsec":1,"mode":"NEAREST"}')), 'mode'],
      [() => crossmatch([], [], { radiusArcsec: 1, memoryMb: 0 }), 'memoryMb'],
      [() => crossmatch(batches({ ra: [1, 2], dec: [0, 91] }), [], { radiusArcsec: 1 }), 'left.dec[1]'],
      [() => crossmatch([], [{ ra: Float64Array.of(1, 2), dec: Float64Array.of(0) }], { radiusArcsec: 1 }), 'right.dec'],
    ];
    for (const [run, path] of cases) expect(await failure(run)).toMatchObject({ code: 'CONSTELLATION_E_INVALID_ARGUMENT', violations: [{ path }] });
  });
});
