/**
 * The cross-match strategy planner (broker/threads/strategies.ts): every candidate listed, the
 * chosen one the fewest bytes among the eligible (ties to fewer steps, then listed order), each
 * refusal with its typed reason and the estimate against the limit, tiling at the smallest
 * fitting order, and the ADQL of each step read back by our ADQL parser.
 */
import { describe, expect, it } from 'vitest';
import { parseAdql } from '../../adapters/ivoa/adql/index.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { regionReadAdql, sameSiteJoinAdql, uploadJoinAdql, type AdqlTable } from '../../broker/threads/adql.js';
import { rowsInRegion } from '../../broker/threads/estimates.js';
import { candidateSpecs, chooseCandidate, contextOf, evaluateAt, planCrossmatch } from '../../broker/threads/strategies.js';
import { WHOLE_REGION, inAreas, tileCells, tileReads } from '../../broker/threads/tiles.js';
import type { AdqlArea } from '../../broker/threads/tiles.js';
import type { CrossmatchSituation, Holding, StrategyCandidate, TapFacts } from '../../broker/threads/types.js';

const TAP: TapFacts = { service: 'tap', adql: true, maxRec: null, upload: true, uploadLimitBytes: null, rowCap: null };
const cone = { ra: 180, dec: 0, radiusDeg: 1 };
const region = { moc: SMoc.fromCone(cone.ra, cone.dec, cone.radiusDeg, 10), cone };

function holding(site: string, rows: number, rowBytes: number, tap: Partial<TapFacts> = {}): Holding {
  return { site, rows, rowBytes, tap: { ...TAP, ...tap } };
}

function situation(over: Partial<CrossmatchSituation>): CrossmatchSituation {
  return { left: [], right: [], region, radiusArcsec: 1, mode: 'BEST', ...over };
}

function find(plan: { candidates: StrategyCandidate[] }, strategy: string, left?: string, right?: string): StrategyCandidate {
  const c = plan.candidates.find((x) => x.strategy === strategy && (left === undefined || x.sites.left === left) && (right === undefined || x.sites.right === right));
  if (!c) throw new Error(`no ${strategy} candidate ${left}/${right}`);
  return c;
}

describe('planCrossmatch: the choice', () => {
  it('lists every strategy at every choice of sites and chooses the fewest bytes among the eligible', () => {
    const plan = planCrossmatch(situation({
      left: [holding('esa', 20_000, 60), holding('both', 20_000, 60)],
      right: [holding('mast', 30_000, 80), holding('both', 30_000, 80)],
    }));
    // SAME_SITE at `both`; UPLOAD: 2 left sites × 2 right sites × 2 directions; BROKER 2 × 2.
    expect(plan.candidates.filter((c) => c.strategy === 'SAME_SITE')).toHaveLength(1);
    expect(plan.candidates.filter((c) => c.strategy === 'UPLOAD')).toHaveLength(8);
    expect(plan.candidates.filter((c) => c.strategy === 'BROKER')).toHaveLength(4);
    const eligible = plan.candidates.filter((c) => c.eligible);
    expect(plan.chosen).not.toBeNull();
    expect(plan.chosen!.bytes.total).toBe(Math.min(...eligible.map((c) => c.bytes.total)));
    expect(plan.chosen!.strategy).toBe('SAME_SITE');
    expect(plan.chosen!.sites).toEqual({ left: 'both', right: 'both' });
    // Every candidate carries its rows, bytes and steps.
    for (const c of plan.candidates) {
      expect(c.rows.left).toBe(20_000);
      expect(c.bytes.total).toBe(c.bytes.fetchedLeft + c.bytes.fetchedRight + c.bytes.uploaded + c.bytes.pairs);
      expect(c.steps).toBeGreaterThan(0);
    }
  });

  it('counts bytes as the issue says: UPLOAD = the side fetched + uploaded + pairs; BROKER = both sides, the right one widened', () => {
    const plan = planCrossmatch(situation({ left: [holding('a', 10_000, 50)], right: [holding('b', 40_000, 70)], radiusArcsec: 30 }));
    const up = find(plan, 'UPLOAD');
    expect(up.upload).toEqual({ side: 'left', from: 'a', to: 'b' });
    expect(up.bytes.fetchedLeft).toBe(10_000 * 50);
    expect(up.bytes.uploaded).toBe(10_000 * 50);
    expect(up.bytes.pairs).toBeGreaterThan(0);
    const broker = find(plan, 'BROKER');
    expect(broker.bytes.fetchedLeft).toBe(10_000 * 50);
    // A 1° cone widened by 30″: (1 + 30/3600)² of the rows.
    expect(broker.rows.right).toBeCloseTo(40_000 * (1 + 30 / 3600) ** 2, -1);
    expect(Math.abs(broker.bytes.fetchedRight - broker.rows.right * 70)).toBeLessThanOrEqual(70);
    expect(broker.bytes.pairs).toBe(0);
    // Uploading the larger side is listed too, and moves more.
    const upRight = plan.candidates.find((c) => c.strategy === 'UPLOAD' && c.upload?.side === 'right')!;
    expect(upRight.bytes.total).toBeGreaterThan(up.bytes.total);
    // At 30″ chance pairs (≈ 2.8 per left row) make the upload join's answer larger than both reads.
    expect(up.bytes.total).toBeGreaterThan(broker.bytes.total);
    expect(plan.chosen).toBe(broker);
    // At 1″ the upload wins.
    const narrow = planCrossmatch(situation({ left: [holding('a', 10_000, 50)], right: [holding('b', 40_000, 70)], radiusArcsec: 1 }));
    expect(narrow.chosen!.strategy).toBe('UPLOAD');
    expect(narrow.chosen!.upload?.side).toBe('left');
  });

  it('breaks a tie in bytes by fewer steps, then by the listed (site) order', () => {
    // A tiled SAME_SITE moves more pair bytes than one step (each tile's join reads the circle
    // around its cell), so the whole-region step at `b` wins; the tie rule is checked on equal bytes.
    const plan = planCrossmatch(situation({
      left: [holding('a', 50_000, 40, { maxRec: 5_000 }), holding('b', 50_000, 40)],
      right: [holding('a', 50_000, 40, { maxRec: 5_000 }), holding('b', 50_000, 40)],
      strategy: 'SAME_SITE',
    }));
    const a = find(plan, 'SAME_SITE', 'a');
    const b = find(plan, 'SAME_SITE', 'b');
    expect(a.bytes.total).toBeGreaterThan(b.bytes.total);
    expect(a.steps).toBeGreaterThan(b.steps);
    expect(plan.chosen).toBe(b);
    const tiedFewerSteps = { ...a, steps: b.steps - 1, bytes: b.bytes };
    expect(chooseCandidate([b, tiedFewerSteps], null)).toBe(tiedFewerSteps);
    expect(chooseCandidate([b, { ...b }], null)).toBe(b);
    // With equal steps the first listed wins.
    const same = planCrossmatch(situation({
      left: [holding('b', 1000, 40), holding('a', 1000, 40)], right: [holding('b', 1000, 40), holding('a', 1000, 40)], strategy: 'SAME_SITE',
    }));
    expect(same.chosen!.sites.left).toBe('a');
  });

  it('a forced strategy is chosen even when another moves fewer bytes, and refused with its reasons when ineligible', () => {
    const base = { left: [holding('esa', 20_000, 60), holding('both', 20_000, 60)], right: [holding('both', 30_000, 80)] };
    const forced = planCrossmatch(situation({ ...base, strategy: 'BROKER' }));
    expect(forced.forced).toBe('BROKER');
    expect(forced.chosen!.strategy).toBe('BROKER');
    expect(forced.candidates.some((c) => c.strategy === 'SAME_SITE' && c.eligible)).toBe(true);
    const refused = planCrossmatch(situation({ left: [holding('esa', 1, 60)], right: [holding('mast', 1, 80)], strategy: 'SAME_SITE' }));
    expect(refused.chosen).toBeNull();
    expect(refused.refusal.map((r) => r.code)).toEqual(['NO_SITE_HOLDS_BOTH']);
    expect(refused.refusal[0].message).toContain('left at esa; right at mast');
  });
});

describe('planCrossmatch: typed reasons', () => {
  it('NO_REPLICA and NO_SITE_HOLDS_BOTH', () => {
    const none = planCrossmatch(situation({ left: [], right: [holding('b', 10, 10)] }));
    expect(none.chosen).toBeNull();
    expect(none.candidates.map((c) => c.strategy)).toEqual(['SAME_SITE', 'UPLOAD', 'BROKER']);
    for (const c of none.candidates) expect(c.reasons).toEqual([expect.objectContaining({ code: 'NO_REPLICA', side: 'left' })]);
    const apart = planCrossmatch(situation({ left: [holding('a', 10, 10)], right: [holding('b', 10, 10)] }));
    expect(find(apart, 'SAME_SITE').reasons.map((r) => r.code)).toEqual(['NO_SITE_HOLDS_BOTH']);
  });

  it('NO_UPLOAD, NO_ADQL, NOT_ALLOWED_SITE and NOT_ONE_SERVICE', () => {
    const plan = planCrossmatch(situation({
      left: [holding('a', 100, 10), holding('c', 100, 10, { service: 'tap1' })],
      right: [holding('b', 100, 10, { upload: false }), holding('d', 100, 10, { adql: false }), holding('c', 100, 10, { service: 'tap2' })],
      sites: ['a', 'b', 'c', 'd'],
    }));
    const up = plan.candidates.find((c) => c.strategy === 'UPLOAD' && c.upload?.from === 'a' && c.upload.to === 'b')!;
    expect(up.eligible).toBe(false);
    expect(up.reasons).toEqual([expect.objectContaining({ code: 'NO_UPLOAD', site: 'b' })]);
    const broker = find(plan, 'BROKER', 'a', 'd');
    expect(broker.reasons).toEqual([expect.objectContaining({ code: 'NO_ADQL', site: 'd', side: 'right' })]);
    expect(find(plan, 'SAME_SITE', 'c').reasons.map((r) => r.code)).toEqual(['NOT_ONE_SERVICE']);
    const narrowed = planCrossmatch(situation({ left: [holding('a', 100, 10)], right: [holding('b', 100, 10)], sites: ['b'] }));
    expect(find(narrowed, 'BROKER').reasons).toEqual([expect.objectContaining({ code: 'NOT_ALLOWED_SITE', site: 'a' })]);
    expect(narrowed.chosen).toBeNull();
  });

  it('MAXREC, ROW_CAP and UPLOAD_LIMIT, with the estimated rows against the limit, when even order 12 does not fit', () => {
    const plan = planCrossmatch(situation({
      left: [holding('a', 2_000_000, 100, { maxRec: 10 })],
      right: [holding('b', 3_000_000, 100, { rowCap: 20, uploadLimitBytes: 1_000 })],
    }));
    const broker = find(plan, 'BROKER');
    expect(broker.eligible).toBe(false);
    expect(broker.tiling).toBeNull();
    const codes = broker.reasons.map((r) => `${r.code}:${r.site}`);
    expect(codes).toEqual(['MAXREC:a', 'ROW_CAP:b']);
    expect(broker.reasons[0].message).toMatch(/about 2,000,000 left rows read in one step exceed maxRec 10 of a, and even tiles of order 12 \([\d,]+ tiles\) need about [\d,]+ rows/);
    const up = plan.candidates.find((c) => c.strategy === 'UPLOAD' && c.upload?.side === 'left')!;
    expect(up.reasons.map((r) => r.code)).toContain('UPLOAD_LIMIT');
    expect(up.reasons.find((r) => r.code === 'UPLOAD_LIMIT')!.message).toMatch(/exceed uploadLimitBytes 1,000 of b/);
    expect(plan.chosen).toBeNull();
    expect(plan.refusal.length).toBeGreaterThan(0);
  });
});

describe('planCrossmatch: the fast lane', () => {
  it('a caller inside a site prefers that site: what it reads or returns there moves 0 bytes, and the plan says so', () => {
    const both = { left: [holding('a', 20_000, 60), holding('b', 20_000, 60)], right: [holding('a', 30_000, 80), holding('b', 30_000, 80)] };
    // Without a caller the two sites tie and the first listed wins.
    const plain = planCrossmatch(situation(both));
    expect(plain.chosen).toMatchObject({ strategy: 'SAME_SITE', sites: { left: 'a' } });
    expect(plain.chosen!.bytes.total).toBeGreaterThan(0);
    expect(plain.callerSite).toBeNull();
    const fromB = planCrossmatch(situation({ ...both, callerSite: 'b' }));
    expect(fromB.callerSite).toBe('b');
    expect(fromB.chosen).toMatchObject({ strategy: 'SAME_SITE', sites: { left: 'b' }, bytes: { total: 0 } });
    expect(find(fromB, 'SAME_SITE', 'a').bytes.total).toBe(plain.chosen!.bytes.total);
    // BROKER between a and b from b: only a's rows travel; UPLOAD from a to b: only the read at a.
    const broker = find(fromB, 'BROKER', 'a', 'b');
    expect(broker.bytes).toMatchObject({ fetchedRight: 0 });
    expect(broker.bytes.fetchedLeft).toBe(find(plain, 'BROKER', 'a', 'b').bytes.fetchedLeft);
    const upload = fromB.candidates.find((c) => c.strategy === 'UPLOAD' && c.upload?.from === 'a' && c.upload.to === 'b')!;
    expect(upload.bytes).toMatchObject({ uploaded: 0, pairs: 0 });
    expect(upload.bytes.total).toBe(upload.bytes.fetchedLeft);
  });
});

describe('planCrossmatch: tiling', () => {
  it('cuts the region at the smallest order whose largest tile fits, and not at all when one step fits', () => {
    for (const maxRec of [1e9, 40_000, 5_000, 800, 100, 20]) {
      const s = situation({ left: [holding('a', 60_000, 40, { maxRec })], right: [holding('b', 80_000, 40)] });
      const plan = planCrossmatch(s);
      const broker = find(plan, 'BROKER');
      const spec = candidateSpecs(s, 'BROKER')[0];
      const ctx = contextOf(s);
      const fits = (o: number | null) => evaluateAt(spec, s, o, ctx).violations.length === 0;
      if (fits(null)) {
        expect(broker.tiling!.order).toBeNull();
        expect(broker.steps).toBe(3);
        continue;
      }
      const order = broker.tiling!.order!;
      expect(fits(order)).toBe(true);
      for (let o = 0; o < order; o++) expect(fits(o)).toBe(false);
      expect(broker.tiling!.cells).toEqual(tileCells(region.moc, order));
      expect(broker.steps).toBe(2 * broker.tiling!.cells.length + 1);
      expect(broker.tiling!.perStep.leftRows).toBeLessThanOrEqual(maxRec);
    }
  });

  it('a cut region never looks cheaper than the whole (tiles read their cells\' circles and the widened margins)', () => {
    // A 1° cone, a 0.05° cone whose order-10 MOC is several times its area, and a MOC region.
    const small = { ra: 10, dec: -89.9, radiusDeg: 0.05 };
    const regions = [
      region,
      { moc: SMoc.fromCone(small.ra, small.dec, small.radiusDeg, 10), cone: small },
      { moc: SMoc.fromCells(7, [0, 1, 2, 5, 700, 701]), cone: null },
    ];
    for (const r of regions) {
      const s = situation({ left: [holding('a', 60_000, 40)], right: [holding('b', 80_000, 40)], radiusArcsec: 20, region: r });
      const spec = candidateSpecs(s, 'BROKER')[0];
      const whole = evaluateAt(spec, s, null).bytes.total;
      const byOrder = Array.from({ length: 13 }, (_, o) => evaluateAt(spec, s, o).bytes.total);
      for (const b of byOrder) expect(b).toBeGreaterThanOrEqual(whole);
      // The finest tiling reads the most: its margins and circles overlap the most.
      expect(Math.max(...byOrder)).toBe(byOrder[12]);
    }
  });

  it('no tile reads more rows than the limit its estimate was planned against (uniform rows, circle reads counted)', () => {
    // 100,000 left and 120,000 right rows spread uniformly over the 1° cone (seeded), read as the
    // runbook reads them: each tile's left rows over its cell's circle and the cone, its right
    // rows over both widened by the radius. Tiles at base-pixel corners are thin, their circles
    // 3.4 times the cell; the estimate must bound them all, not just the average cell. SLACK: the
    // counting noise of a few thousand random rows (√4000 ≈ 1.6%) and the cone's rows spread
    // over its slightly larger MOC. Before the circles were counted, tiles read up to 2.4× the limit.
    const SLACK = 1.05;
    for (const c of [cone, { ra: 45, dec: 41.81, radiusDeg: 1 }, { ra: 0.2, dec: 89.5, radiusDeg: 1 }]) {
      const r = { moc: SMoc.fromCone(c.ra, c.dec, c.radiusDeg, 12), cone: c };
      const left = uniformInCone(c, 100_000, 11);
      const right = uniformInCone(c, 120_000, 12);
      for (const strategy of ['BROKER', 'UPLOAD'] as const) {
        const s = situation({ left: [holding('a', left.length / 3, 40, { maxRec: 4_000 })], right: [holding('b', right.length / 3, 40, { maxRec: 6_000 })], radiusArcsec: 30, region: r, strategy });
        const plan = planCrossmatch(s);
        const chosen = plan.chosen!;
        expect(chosen.tiling!.order).not.toBeNull();
        for (const cell of chosen.tiling!.cells) {
          const reads = tileReads({ order: chosen.tiling!.order, cell }, r, 30);
          expect(count(left, reads.left), `${strategy} left read of tile ${cell} at ${c.ra},${c.dec}`).toBeLessThanOrEqual(4_000 * SLACK);
          if (strategy === 'BROKER') expect(count(right, reads.right), `right read of tile ${cell} at ${c.ra},${c.dec}`).toBeLessThanOrEqual(6_000 * SLACK);
        }
      }
    }
  });
});

/** `n` positions uniform over a cone (seeded), as flat unit vectors [x, y, z, ...]. */
function uniformInCone(c: { ra: number; dec: number; radiusDeg: number }, n: number, seed: number): Float64Array {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rad = Math.PI / 180;
  // Uniform on the cap around the pole, then rotated to the cone's centre.
  const cosR = Math.cos(c.radiusDeg * rad);
  const out = new Float64Array(3 * n);
  const sd = Math.sin(c.dec * rad), cd = Math.cos(c.dec * rad);
  for (let i = 0; i < n; i++) {
    const z = cosR + (1 - cosR) * random();
    const phi = 2 * Math.PI * random();
    const s = Math.sqrt(1 - z * z);
    // Point near the north pole (x, y, z), tilted so the pole goes to dec, then turned to ra.
    const x0 = s * Math.cos(phi), y0 = s * Math.sin(phi);
    const x1 = z * cd - x0 * sd;
    const z1 = z * sd + x0 * cd;
    const [cr, sr] = [Math.cos(c.ra * rad), Math.sin(c.ra * rad)];
    out.set([x1 * cr - y0 * sr, x1 * sr + y0 * cr, z1], 3 * i);
  }
  return out;
}

/** Positions (flat [ra, dec, ...] degrees) inside every circle of `areas` (a circle read, as the site evaluates it). */
function count(points: Float64Array, areas: readonly AdqlArea[]): number {
  const circles = areas.map((a) => {
    if (a.kind !== 'circle') throw new Error('only circle reads here');
    return { v: unit(a.circle.ra, a.circle.dec), cos: Math.cos((a.circle.radiusDeg * Math.PI) / 180) };
  });
  let n = 0;
  for (let i = 0; i < points.length; i += 3) {
    if (circles.every((c) => points[i] * c.v[0] + points[i + 1] * c.v[1] + points[i + 2] * c.v[2] >= c.cos)) n++;
  }
  return n;
}

function unit(ra: number, dec: number): [number, number, number] {
  const r = Math.PI / 180;
  return [Math.cos(dec * r) * Math.cos(ra * r), Math.cos(dec * r) * Math.sin(ra * r), Math.sin(dec * r)];
}

describe('estimates', () => {
  it('rowsInRegion scales rows by the region\'s share of the coverage; unknown coverage is the whole sky', () => {
    const coverage = SMoc.fromCells(3, [0, 1, 2, 3]);
    const region = SMoc.fromCells(3, [1, 2, 700]);
    expect(rowsInRegion(1000, coverage, region)).toBeCloseTo(500, 9);
    expect(rowsInRegion(768, null, region)).toBeCloseTo(3, 9);
    expect(rowsInRegion(1000, coverage, SMoc.empty())).toBe(0);
  });
});

describe('ADQL of each step', () => {
  const gaia: AdqlTable = { table: 'gaiadr3.gaia_source', ra: 'ra', dec: 'dec', columns: [{ name: 'source_id', as: 'source_id' }, { name: 'phot_g_mean_mag', as: 'g' }] };
  const ps1: AdqlTable = { table: 'dbo.MeanObject', ra: 'raMean', dec: 'decMean', columns: [{ name: 'objID', as: 'objid' }, { name: 'size', as: 'ps1_size' }] };

  it('the same-site join, the upload join and the plain reads parse as ADQL and use the site\'s names', () => {
    const tile = { order: 6, cell: tileCells(region.moc, 6)[0] };
    for (const healpixUdf of [false, true]) {
      const reads = tileReads(tile, region, 1, { healpixUdf });
      const join = sameSiteJoinAdql({ left: gaia, right: ps1, radiusArcsec: 1, leftIn: reads.left, rightIn: reads.right });
      expect(() => parseAdql(join)).not.toThrow();
      expect(join).toContain('FROM gaiadr3.gaia_source AS l JOIN dbo.MeanObject AS r ON 1=CONTAINS(POINT(\'ICRS\', l.ra, l.dec), CIRCLE(\'ICRS\', r.raMean, r.decMean, 0.0002777777777777778))');
      // A reserved word is quoted.
      expect(join).toContain('r."size" AS ps1_size');
      expect(join).toContain('DISTANCE(POINT(\'ICRS\', l.ra, l.dec), POINT(\'ICRS\', r.raMean, r.decMean)) * 3600 AS sep_arcsec');
      if (healpixUdf) expect(join).toContain(`ivo_healpix_index(6, l.ra, l.dec) = ${tile.cell}`);
      const up = uploadJoinAdql({ left: gaia, right: ps1, radiusArcsec: 1, leftIn: [], rightIn: reads.right, uploaded: 'left', uploadName: 'left_rows' });
      expect(() => parseAdql(up)).not.toThrow();
      expect(up).toContain('FROM TAP_UPLOAD.left_rows AS l JOIN dbo.MeanObject AS r');
      const read = regionReadAdql(ps1, reads.right);
      expect(() => parseAdql(read)).not.toThrow();
      expect(read).toMatch(/^SELECT t.raMean, t.decMean, t.objID, t."size" FROM dbo.MeanObject AS t WHERE 1=CONTAINS/);
    }
    const whole = tileReads(WHOLE_REGION, region, 1);
    expect(whole.leftExact).toBe(true);
    expect(regionReadAdql(gaia, whole.left)).toBe(
      "SELECT t.ra, t.dec, t.source_id, t.phot_g_mean_mag FROM gaiadr3.gaia_source AS t WHERE 1=CONTAINS(POINT('ICRS', t.ra, t.dec), CIRCLE('ICRS', 180, 0, 1))",
    );
  });
});
