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
import { candidateSpecs, contextOf, evaluateAt, planCrossmatch } from '../../broker/threads/strategies.js';
import { WHOLE_REGION, tileCells, tileReads } from '../../broker/threads/tiles.js';
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
    // Two sites hold both; SAME_SITE moves the same pair bytes at either, but `a` must tile (maxRec).
    // (Forced: with rows this narrow, reading both sides into the broker would move fewer bytes.)
    const plan = planCrossmatch(situation({
      left: [holding('a', 50_000, 40, { maxRec: 5_000 }), holding('b', 50_000, 40)],
      right: [holding('a', 50_000, 40, { maxRec: 5_000 }), holding('b', 50_000, 40)],
      strategy: 'SAME_SITE',
    }));
    const a = find(plan, 'SAME_SITE', 'a');
    const b = find(plan, 'SAME_SITE', 'b');
    expect(a.bytes.total).toBe(b.bytes.total);
    expect(a.steps).toBeGreaterThan(b.steps);
    expect(plan.chosen).toBe(b);
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

  it('finer tiles read more right rows (the widened margins), so bytes grow with the order', () => {
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
      let prev = evaluateAt(spec, s, null).bytes.total;
      for (let o = 0; o <= 12; o++) {
        const now = evaluateAt(spec, s, o).bytes.total;
        expect(now).toBeGreaterThanOrEqual(prev);
        prev = now;
      }
    }
  });
});

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
