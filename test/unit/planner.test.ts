import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plan, type PlanOptions } from '../../broker/planner/plan.js';
import { INDEX_MIN_REPLICAS, PlannerSnapshot, snapshotFromDocuments, type DocumentSnapshotOptions } from '../../broker/planner/snapshot.js';
import type { Candidate, Plan, PlanRequest, ReasonCode } from '../../broker/planner/types.js';
import { MAX_PIXRAD } from '../../registry/coverage/healpix.js';
import { SMoc } from '../../registry/coverage/moc.js';
import type { CapabilityDocument, ComputePoolDoc, DatasetDoc, ImageDoc } from '../../registry/model/capability.js';
import { documentFor } from '../support/documents.js';

const NOW = Date.parse('2026-11-23T13:00:00Z');
const ANON = { groups: [] };
const GAIA = 'gaia_dr3.gaia_source';
const DES = 'des_dr2.main';
const IMAGE = 'images.example.org/astro/astroml:24.07';
const DIGEST = 'sha256:' + 'a'.repeat(64);

const pool = (p: Partial<ComputePoolDoc> = {}): ComputePoolDoc => ({ id: 'batch', kind: 'batch', cores: 100, memoryGb: 400, gpus: 0, freeCores: 50, queueWaitS: 60, ...p });
const image = (i: Partial<ImageDoc> = {}): ImageDoc => ({ ref: IMAGE, digest: DIGEST, arch: 'amd64', types: ['headless'], ...i });

/** A site document holding `datasets` (id → overrides), with optional compute and images. */
function site(id: string, datasets: Record<string, Partial<DatasetDoc>>, extra: Partial<CapabilityDocument> = {}): CapabilityDocument {
  return documentFor(id, Object.entries(datasets).map(([ds, d]) => ({ id: ds, table: ds, ...d })), extra);
}

function run(docs: CapabilityDocument[], request: PlanRequest, opts: { snap?: DocumentSnapshotOptions; plan?: PlanOptions; groups?: string[] } = {}): Plan {
  return plan(snapshotFromDocuments(docs, opts.snap), request, { groups: opts.groups ?? [] }, { now: NOW, ...opts.plan });
}

const codes = (p: Plan, siteId: string): ReasonCode[] => candidate(p, siteId).reasons.map((r) => r.code);
const candidate = (p: Plan, siteId: string): Candidate => p.withoutData.everySite(p.candidates).find((c) => c.site === siteId)!;
const query = (datasets: string[], extra: Partial<PlanRequest> = {}): PlanRequest => ({ kind: 'QUERY', datasets, ...extra });
const container = (datasets: string[], extra: Partial<PlanRequest> = {}): PlanRequest => ({ kind: 'CONTAINER', datasets, image: IMAGE, cores: 4, memoryGb: 16, ...extra });

describe('planner choices on hand-built federations', () => {
  it('data only at one site: that site, the others NO_REPLICA', () => {
    const p = run([site('a', { [GAIA]: {} }), site('b', { [DES]: {} }), site('c', {})], query([GAIA]));
    expect(p.chosen?.site).toBe('a');
    expect(codes(p, 'b')).toEqual(['NO_REPLICA']);
    expect(codes(p, 'c')).toEqual(['NO_REPLICA']);
    expect(candidate(p, 'b').reasons[0].dataset).toBe(GAIA);
    // b and c hold none of the data: counted, not candidates, unless every site is asked for.
    expect(p.candidates.map((c) => c.site)).toEqual(['a']);
    expect(p.withoutData.count).toBe(2);
    expect(p.withoutData.ids()).toEqual(['b', 'c']);
    expect(p.withoutData.reasons).toEqual([expect.objectContaining({ code: 'NO_REPLICA', dataset: GAIA })]);
    expect(p.withoutData.everySite(p.candidates).map((c) => [c.site, c.eligible])).toEqual([['a', true], ['b', false], ['c', false]]);
    expect(p.withoutData.verdict('c')).toMatchObject({ site: 'c', eligible: false, reasons: [{ code: 'NO_REPLICA', dataset: GAIA }] });
    expect(p.withoutData.verdict('a')).toBeUndefined();
    expect(p.withoutData.verdict('nosuch')).toBeUndefined();
  });

  it('same data at two sites with different load: the idler one, both eligible', () => {
    const docs = [
      site('busy', { [GAIA]: {} }, { compute: [pool({ freeCores: 5, queueWaitS: 600 })], images: [image()] }),
      site('idle', { [GAIA]: {} }, { compute: [pool({ freeCores: 95, queueWaitS: 30 })], images: [image()] }),
    ];
    const p = run(docs, container([GAIA]));
    expect(p.chosen?.site).toBe('idle');
    expect(candidate(p, 'busy').eligible).toBe(true);
    expect(candidate(p, 'busy').score).toBeLessThan(candidate(p, 'idle').score);
    expect(candidate(p, 'idle').estimatedWaitS).toBe(30);
    const load = candidate(p, 'busy').terms.find((t) => t.name === 'load')!;
    expect(load).toMatchObject({ value: 0.95, unit: '1', weight: 600, kind: 'COST' });
    expect(load.contribution).toBeCloseTo(570);
    expect(codes(p, 'busy')).toEqual(['COST']);
  });

  it('region outside one replica\'s coverage: NOT_COVERED there, the covering site chosen', () => {
    // Order-0 cells 0-3 are the northern polar cap; a cone at dec -80 lies outside it.
    const docs = [site('north', { [GAIA]: { coverage: '0/0-3' } }), site('all', { [GAIA]: { coverage: '0/0-11' } })];
    const south = run(docs, query([GAIA], { region: { cone: { ra: 10, dec: -80, radiusDeg: 1 } } }));
    expect(south.chosen?.site).toBe('all');
    expect(codes(south, 'north')).toEqual(['NOT_COVERED']);
    const north = run(docs, query([GAIA], { region: { cone: { ra: 10, dec: 80, radiusDeg: 1 } } }));
    expect(north.candidates.every((c) => c.eligible)).toBe(true);
    // The northern replica packs its rows into a third of the sky, so more of them fall in the cone.
    expect(candidate(north, 'north').estimatedRows!).toBeGreaterThan(candidate(north, 'all').estimatedRows!);
    const moc = run(docs, query([GAIA], { region: { moc: '1/40' } }));
    expect(codes(moc, 'north')).toEqual(['NOT_COVERED']);
    expect(moc.chosen?.site).toBe('all');
  });

  it('image only at one site: NO_IMAGE elsewhere; matched by ref, digest or ref@digest', () => {
    const docs = [
      site('a', { [GAIA]: {} }, { compute: [pool({ queueWaitS: 0, freeCores: 100 })] }),
      site('b', { [GAIA]: {} }, { compute: [pool()], images: [image()] }),
      site('c', { [GAIA]: {} }, { compute: [pool()], images: [image({ arch: 'arm64' })] }),
      site('d', { [GAIA]: {} }, { compute: [pool(), pool({ id: 'gpu' })], images: [image({ compute: ['notebooks'] })] }),
    ];
    for (const ref of [IMAGE, DIGEST, `${IMAGE}@${DIGEST}`]) {
      const p = run(docs, container([GAIA], { image: ref }));
      expect(p.chosen?.site).toBe('b');
      expect(codes(p, 'a')).toEqual(['NO_IMAGE']);
      expect(candidate(p, 'c').reasons[0].message).toMatch(/arm64, not amd64/);
      expect(candidate(p, 'd').reasons[0]).toMatchObject({ code: 'NO_IMAGE', message: expect.stringMatching(/may not run/) });
    }
    expect(run(docs, container([GAIA], { image: IMAGE, arch: 'arm64' })).chosen?.site).toBe('c');
  });

  it('site down: SITE_DOWN, the other site chosen; DEGRADED and UNKNOWN rank below UP', () => {
    const docs = [site('a', { [GAIA]: {} }), site('b', { [GAIA]: {} }), site('c', { [GAIA]: {} }), site('d', { [GAIA]: {} })];
    const p = run(docs, query([GAIA]), { snap: { status: { a: 'DOWN', b: 'DEGRADED', c: 'UNKNOWN', d: 'UP' } } });
    expect(p.chosen?.site).toBe('d');
    expect(codes(p, 'a')).toEqual(['SITE_DOWN']);
    expect(p.candidates.map((c) => [c.site, c.score])).toEqual([['d', 1], ['c', 0.8], ['b', 0.5], ['a', 0]]);
  });

  it('FORBIDDEN on restricted replicas unless the caller is in one of their groups', () => {
    const docs = [
      site('private', { [GAIA]: { access: { public: false, groups: ['lsst-data-rights'] } } }, { compute: [pool({ queueWaitS: 0 })], images: [image()] }),
      site('public', { [GAIA]: {} }, { compute: [pool({ queueWaitS: 900 })], images: [image()] }),
    ];
    const anon = run(docs, container([GAIA]));
    expect(anon.chosen?.site).toBe('public');
    expect(codes(anon, 'private')).toEqual(['FORBIDDEN']);
    expect(candidate(anon, 'private').reasons[0].message).toMatch(/lsst-data-rights/);
    const member = run(docs, container([GAIA]), { groups: ['other', 'lsst-data-rights'] });
    expect(member.chosen?.site).toBe('private');
  });

  it('NO_SERVICE: a QUERY on a replica behind a non-TAP service, a CONTAINER at a site without a batch pool', () => {
    const scs = site('scs', { [GAIA]: { service: 'cone' } }, {
      services: [{ id: 'cone', type: 'scs', url: 'https://scs.example.org/cone' }],
      compute: [pool({ kind: 'notebook' })], images: [image()],
    });
    const tap = site('tap', { [GAIA]: {} }, { compute: [pool()], images: [image()] });
    const q = run([scs, tap], query([GAIA]));
    expect(q.chosen?.site).toBe('tap');
    expect(codes(q, 'scs')).toEqual(['NO_SERVICE']);
    const c = run([scs, tap], container([GAIA]));
    expect(c.chosen?.site).toBe('tap');
    expect(candidate(c, 'scs').reasons).toEqual([expect.objectContaining({ code: 'NO_SERVICE', message: expect.stringMatching(/no batch compute pool/) })]);
  });

  it('NO_CAPACITY when cores, memory, GPUs or walltime exceed every fitting pool', () => {
    const small = site('small', { [GAIA]: {} }, {
      compute: [pool({ queueWaitS: 0, maxCoresPerJob: 8, maxMemoryGbPerJob: 32, gpus: 0, maxWalltimeS: 3600 })], images: [image()],
    });
    const big = site('big', { [GAIA]: {} }, { compute: [pool({ cores: 1000, memoryGb: 4000, gpus: 8, queueWaitS: 3000 })], images: [image()] });
    expect(run([small, big], container([GAIA], { cores: 8, memoryGb: 32, walltimeS: 3600 })).chosen?.site).toBe('small');
    for (const over of [{ cores: 9 }, { memoryGb: 33 }, { gpus: 1 }, { walltimeS: 3601 }]) {
      const p = run([small, big], container([GAIA], { cores: 8, memoryGb: 32, ...over }));
      expect(p.chosen?.site).toBe('big');
      expect(codes(p, 'small')).toEqual(['NO_CAPACITY']);
    }
    const p = run([small, big], container([GAIA], { cores: 2000, gpus: 9 }));
    expect(p.chosen).toBeNull();
    expect(candidate(p, 'big').reasons[0].message).toMatch(/2000 cores > 1000, 9 GPUs > 8/);
  });

  it('LIMIT_EXCEEDED when the estimated rows in the region pass the service maxRec (only for known row counts)', () => {
    const docs = [
      site('huge', { [GAIA]: { rows: 1_000_000_000, coverage: '0/0-11' } }),
      site('unknown', { [GAIA]: { rows: undefined, coverage: '0/0-11' } }),
    ];
    const all = run(docs, query([GAIA]));
    expect(codes(all, 'huge')).toEqual(['LIMIT_EXCEEDED']);
    expect(all.chosen?.site).toBe('unknown');
    expect(codes(all, 'unknown')).toEqual(['COST', 'UNKNOWN_SIZE']);
    // 1e9 rows over the sky: a 0.1° cone holds about 760 of them, well under maxRec 100000.
    const small = run(docs, query([GAIA], { region: { cone: { ra: 0, dec: 0, radiusDeg: 0.1 } } }));
    expect(candidate(small, 'huge').eligible).toBe(true);
    expect(candidate(small, 'huge').estimatedRows!).toBeGreaterThan(500);
    expect(candidate(small, 'huge').estimatedRows!).toBeLessThan(1000);
  });

  it('a container at a site holding only some of the data pulls the rest, paying the bytes term', () => {
    const docs = [
      site('both', { [GAIA]: { rows: 1e6, rowBytes: 100 }, [DES]: { rows: 1e6, rowBytes: 200 } }, { compute: [pool()], images: [image()] }),
      site('half', { [GAIA]: { rows: 1e6, rowBytes: 100 } }, { compute: [pool()], images: [image()] }),
      site('none', {}, { compute: [pool()], images: [image()] }),
    ];
    const p = run(docs, container([GAIA, DES]));
    expect(p.chosen?.site).toBe('both');
    expect(candidate(p, 'both').estimatedBytesMoved).toBe(0);
    expect(candidate(p, 'half').eligible).toBe(true);
    expect(candidate(p, 'half').estimatedBytesMoved).toBe(2e8);
    expect(codes(p, 'half')).toEqual(['COST', 'DATA_TO_MOVE']);
    expect(codes(p, 'none')).toEqual(['NO_REPLICA', 'NO_REPLICA']);
    const strict = run(docs, container([GAIA, DES]), { plan: { requireAllLocal: true } });
    expect(codes(strict, 'half')).toEqual(['NO_REPLICA']);
  });

  it('stale advertisements and preference move the score', () => {
    const fresh = site('fresh', { [GAIA]: {} });
    const stale = site('stale', { [GAIA]: {} }, { asOf: '2026-11-20T13:00:00Z' });
    const p = run([fresh, stale], query([GAIA]));
    expect(p.chosen?.site).toBe('fresh');
    // Three days old: fresh for one, then halved twice.
    expect(candidate(p, 'stale').score).toBeCloseTo(0.25);
    expect(codes(p, 'stale')).toContain('STALE');
    expect(run([fresh, stale], query([GAIA]), { snap: { preference: { stale: 5 } } }).chosen?.site).toBe('stale');
  });

  it('breaks ties by site id and shows the formula', () => {
    const p = run([site('z', { [GAIA]: {} }), site('m', { [GAIA]: {} })], query([GAIA]));
    expect(p.chosen?.site).toBe('m');
    expect(p.formula).toMatch(/score = health × freshness × preference/);
    expect(p.chosen!.terms.map((t) => t.name)).toEqual(['bytesToMove', 'queueWait', 'load', 'resultBytes', 'health', 'freshness', 'preference', 'timeScale']);
  });

  it('rejects bad requests with typed errors', () => {
    const docs = [site('a', { [GAIA]: {} })];
    expect(() => run(docs, query([]))).toThrow(/at least one dataset/);
    expect(() => run(docs, query([GAIA], { region: { cone: { ra: 0, dec: 95, radiusDeg: 1 } } }))).toThrow(/dec/);
    expect(() => run(docs, query([GAIA], { region: { cone: { ra: 0, dec: 0, radiusDeg: 1 }, moc: '0/1' } }))).toThrow(/exactly one/);
    expect(() => run(docs, query([GAIA], { region: { moc: 'not a moc' } }))).toThrow(expect.objectContaining({ kind: 'INVALID_MOC' }));
    expect(() => run(docs, container([GAIA], { cores: -1 }))).toThrow(expect.objectContaining({ kind: 'INVALID_ARGUMENT' }));
  });

  it('uses per-dataset coverage indexes for datasets with many replicas, agreeing with direct tests', () => {
    const docs = Array.from({ length: INDEX_MIN_REPLICAS }, (_, i) => site(`s${String(i).padStart(3, '0')}`, {
      [GAIA]: { coverage: SMoc.fromCone(i * 9, (i % 9) * 20 - 80, 10, 5).toAscii() },
    }));
    const snap = snapshotFromDocuments(docs);
    expect(snap.coverageOf(GAIA)).toBeDefined();
    for (const [ra, dec] of [[0, -80], [45, 0], [200, 40], [351, 80]]) {
      const p = plan(snap, query([GAIA], { region: { cone: { ra, dec, radiusDeg: 3 } } }), ANON, { now: NOW });
      for (const c of p.candidates) {
        const moc = snap.site(c.site)!.replicas.get(GAIA)!.moc!;
        expect(c.eligible).toBe(moc.intersectsCone(ra, dec, 3));
      }
    }
  });
});

describe('planner properties', () => {
  const DATASETS = ['d0', 'd1', 'd2'];
  const COVERAGE = ['0/0-11', '0/0-3', '0/4-7', '0/8-11', '1/0-7'];
  const replicaArb = fc.record({
    dataset: fc.constantFrom(...DATASETS),
    coverage: fc.option(fc.constantFrom(...COVERAGE), { nil: undefined }),
    rows: fc.option(fc.integer({ min: 0, max: 1e7 }), { nil: undefined }),
    rowBytes: fc.integer({ min: 8, max: 2000 }),
    public: fc.boolean(),
    groups: fc.subarray(['g1', 'g2']),
  });
  const siteArb = fc.record({
    status: fc.constantFrom('UP', 'DEGRADED', 'DOWN', 'UNKNOWN') as fc.Arbitrary<'UP' | 'DEGRADED' | 'DOWN' | 'UNKNOWN'>,
    replicas: fc.array(replicaArb, { maxLength: 3 }),
    pool: fc.option(fc.record({ cores: fc.integer({ min: 1, max: 64 }), free: fc.integer({ min: 0, max: 64 }), wait: fc.integer({ min: 0, max: 3600 }), gpus: fc.integer({ min: 0, max: 2 }) }), { nil: undefined }),
    image: fc.boolean(),
    ageH: fc.integer({ min: 0, max: 200 }),
  });
  const federationArb = fc.array(siteArb, { minLength: 1, maxLength: 6 });
  const requestArb: fc.Arbitrary<PlanRequest> = fc.record({
    kind: fc.constantFrom('QUERY', 'CONTAINER') as fc.Arbitrary<'QUERY' | 'CONTAINER'>,
    datasets: fc.subarray(DATASETS, { minLength: 1 }),
    region: fc.option(fc.record({ cone: fc.record({ ra: fc.double({ min: 0, max: 359, noNaN: true }), dec: fc.double({ min: -89, max: 89, noNaN: true }), radiusDeg: fc.double({ min: 0.1, max: 20, noNaN: true }) }) }), { nil: undefined }),
    cores: fc.integer({ min: 1, max: 32 }),
    gpus: fc.integer({ min: 0, max: 2 }),
    image: fc.constant(IMAGE),
  });
  const callerArb = fc.subarray(['g1', 'g2']);

  type SiteSpec = typeof siteArb extends fc.Arbitrary<infer T> ? T : never;
  function build(sites: SiteSpec[]) {
    const status: Record<string, 'UP' | 'DEGRADED' | 'DOWN' | 'UNKNOWN'> = {};
    const docs = sites.map((s, i) => {
      const id = `s${i}`;
      status[id] = s.status;
      const datasets: Record<string, Partial<DatasetDoc>> = {};
      for (const r of s.replicas) datasets[r.dataset] ??= { coverage: r.coverage, rows: r.rows, rowBytes: r.rowBytes, access: { public: r.public, groups: r.groups } };
      return site(id, datasets, {
        compute: s.pool ? [pool({ cores: s.pool.cores, freeCores: Math.min(s.pool.free, s.pool.cores), queueWaitS: s.pool.wait, gpus: s.pool.gpus })] : [],
        images: s.image ? [image()] : [],
        asOf: new Date(NOW - s.ageH * 3600e3).toISOString(),
      });
    });
    return { docs, status };
  }

  it('the chosen candidate is eligible, best, and every site appears once: a candidate holding data, or without data', () => {
    fc.assert(fc.property(federationArb, requestArb, callerArb, (sites, request, groups) => {
      const { docs, status } = build(sites);
      const p = run(docs, request, { snap: { status }, groups });
      const without = p.withoutData.ids();
      expect(without).toHaveLength(p.withoutData.count);
      expect([...p.candidates.map((c) => c.site), ...without].sort()).toEqual(docs.map((d) => d.site.id).sort());
      const every = p.withoutData.everySite(p.candidates);
      expect(every.map((c) => c.site).sort()).toEqual(docs.map((d) => d.site.id).sort());
      // The eligible lead, then the rejected in site order, as before sites without data were counted.
      expect(every.slice(0, p.candidates.filter((c) => c.eligible).length)).toEqual(p.candidates.filter((c) => c.eligible));
      const rejectedIds = every.filter((c) => !c.eligible).map((c) => c.site);
      expect(rejectedIds).toEqual([...rejectedIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      for (const id of without) {
        const held = docs.find((d) => d.site.id === id)!.datasets.filter((d) => request.datasets.includes(d.id));
        expect(held, id).toEqual([]);
        expect(every.find((c) => c.site === id)!.reasons.filter((r) => r.code === 'NO_REPLICA').map((r) => r.dataset)).toEqual([...new Set(request.datasets)]);
      }
      const eligible = p.candidates.filter((c) => c.eligible);
      if (p.chosen) {
        expect(p.chosen.eligible).toBe(true);
        for (const c of eligible) expect(p.chosen.score).toBeGreaterThanOrEqual(c.score);
      } else expect(eligible).toHaveLength(0);
      for (const c of every) {
        const hard = c.reasons.some((r) => ['SITE_DOWN', 'NO_REPLICA', 'NOT_COVERED', 'FORBIDDEN', 'NO_SERVICE', 'NO_IMAGE', 'NO_CAPACITY', 'LIMIT_EXCEEDED'].includes(r.code));
        expect(hard).toBe(!c.eligible);
      }
    }), { numRuns: 300 });
  });

  it('adding a replica never makes a previously eligible site ineligible', () => {
    fc.assert(fc.property(federationArb, requestArb, callerArb, fc.nat(), replicaArb, (sites, request, groups, at, extra) => {
      const before = build(sites);
      const target = at % sites.length;
      if (sites[target].replicas.some((r) => r.dataset === extra.dataset)) return;
      const grown = sites.map((s, i) => (i === target ? { ...s, replicas: [...s.replicas, extra] } : s));
      const after = build(grown);
      const p0 = run(before.docs, request, { snap: { status: before.status }, groups });
      const p1 = run(after.docs, request, { snap: { status: after.status }, groups });
      for (const c of p0.candidates) if (c.eligible) expect(candidate(p1, c.site).eligible).toBe(true);
    }), { numRuns: 300 });
  });

  it('is deterministic: the same inputs give the same plan, whatever the document order', () => {
    fc.assert(fc.property(federationArb, requestArb, callerArb, (sites, request, groups) => {
      const { docs, status } = build(sites);
      const a = run(docs, request, { snap: { status }, groups });
      const b = run([...docs].reverse(), request, { snap: { status }, groups });
      expect(b).toEqual(a);
    }), { numRuns: 200 });
  });

  it('plans the same over a snapshot advanced by a reload as over one built afresh', () => {
    fc.assert(fc.property(federationArb, federationArb, fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), requestArb, callerArb, (first, second, keep, request, groups) => {
      // The next generation keeps some sites, replaces others, and adds or drops the rest.
      const sites = second.map((s, i) => (i < first.length && keep[i] ? first[i] : s));
      const changed = new Set(Array.from({ length: Math.max(first.length, sites.length) }, (_, i) => i)
        .filter((i) => !(i < first.length && i < sites.length && keep[i])).map((i) => `s${i}`));
      const before = build(first);
      const after = build(sites);
      const fresh = snapshotFromDocuments(after.docs, { status: after.status });
      const advanced = PlannerSnapshot.advance(snapshotFromDocuments(before.docs, { status: before.status }), 1, changed, fresh.sites.filter((s) => changed.has(s.site.id)));
      expect(plan(advanced, request, { groups }, { now: NOW })).toEqual(plan(fresh, request, { groups }, { now: NOW }));
    }), { numRuns: 200 });
  });
});

describe('planner region tests against the plain MOC methods', () => {
  interface Patch { ra: number; dec: number; radius: number; order: number }
  const deg = Math.PI / 180;
  // Survey patches of several sizes and orders, and a few whole-sky, empty and unknown coverages.
  const patchArb: fc.Arbitrary<Patch | string | undefined> = fc.oneof(
    { weight: 16, arbitrary: fc.record({ ra: fc.double({ min: 0, max: 360, noNaN: true }), dec: fc.double({ min: -90, max: 90, noNaN: true }), radius: fc.double({ min: 0.5, max: 15, noNaN: true }), order: fc.integer({ min: 3, max: 6 }) }) },
    { weight: 1, arbitrary: fc.constantFrom('0/0-11', SMoc.empty(5).toAscii(), undefined) },
  );
  /** The point `d` degrees from (ra, dec) towards bearing `theta` (radians). */
  const offset = (ra: number, dec: number, d: number, theta: number) => {
    const p = dec * deg;
    const r = d * deg;
    const dec2 = Math.asin(Math.min(1, Math.max(-1, Math.sin(p) * Math.cos(r) + Math.cos(p) * Math.sin(r) * Math.cos(theta))));
    const ra2 = ra * deg + Math.atan2(Math.sin(theta) * Math.sin(r) * Math.cos(p), Math.cos(r) - Math.sin(p) * Math.sin(dec2));
    return { ra: (((ra2 / deg) % 360) + 360) % 360, dec: dec2 / deg };
  };
  const federation = (sites: number) => {
    const patches = fc.sample(patchArb, { numRuns: sites, seed: sites });
    const coverage = patches.map((p) => (typeof p === 'object' ? SMoc.fromCone(p.ra, p.dec, p.radius, p.order).toAscii() : p));
    const snap = snapshotFromDocuments(coverage.map((c, i) => site(`s${String(i).padStart(3, '0')}`, { [GAIA]: { coverage: c } })));
    const surveys = patches.filter((p): p is Patch => typeof p === 'object');
    // Random cones, and cones about as far from a patch as its cells reach (some cell radii past its
    // edge, by the inclusive rule), where a bounding cap could go wrong.
    const cones = fc.oneof(
      fc.record({ ra: fc.double({ min: 0, max: 360, noNaN: true }), dec: fc.double({ min: -90, max: 90, noNaN: true }), radiusDeg: fc.double({ min: 0.01, max: 30, noNaN: true }) }),
      fc.record({ p: fc.constantFrom(...surveys), radiusDeg: fc.double({ min: 0.01, max: 5, noNaN: true }), cells: fc.double({ min: -1, max: 3, noNaN: true }), theta: fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }) })
        .map(({ p, radiusDeg, cells, theta }) => ({ ...offset(p.ra, p.dec, Math.min(179, p.radius + radiusDeg + (cells * MAX_PIXRAD[p.order]) / deg), theta), radiusDeg })),
    );
    return { snap, cones };
  };

  // Below INDEX_MIN_REPLICAS each replica is tested through its bounding cap; at it, through the dataset's coverage index.
  it.each([['bounding caps', 60], ['a coverage index', INDEX_MIN_REPLICAS]])('with %s: NOT_COVERED and estimated rows as SMoc.intersectsCone and coneOverlapFraction say', (_, sites) => {
    const { snap, cones } = federation(sites);
    expect(snap.coverageOf(GAIA) !== undefined).toBe(sites >= INDEX_MIN_REPLICAS);
    fc.assert(fc.property(cones, ({ ra, dec, radiusDeg }) => {
      const p = plan(snap, query([GAIA], { region: { cone: { ra, dec, radiusDeg } } }), ANON, { now: NOW });
      for (const c of p.candidates) {
        const moc = snap.site(c.site)!.replicas.get(GAIA)!.moc ?? SMoc.fullSky();
        const covered = moc.intersectsCone(ra, dec, radiusDeg);
        expect(c.reasons.some((r) => r.code === 'NOT_COVERED')).toBe(!covered);
        if (covered) expect(c.estimatedRows).toBe(1000 * moc.coneOverlapFraction(ra, dec, radiusDeg));
      }
    }), { numRuns: 60 });
  });
});
