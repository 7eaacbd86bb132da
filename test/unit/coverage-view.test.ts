/**
 * CoverageView following planner snapshots: after a full load and after site-by-site reloads
 * (replaced, removed and new sites), cone and MOC searches name exactly the datasets whose
 * visible replicas touch the region by the MOC methods; bad cones are refused by name.
 */
import { describe, expect, it } from 'vitest';
import { PlannerSnapshot, snapshotFromDocuments } from '../../broker/planner/snapshot.js';
import { CoverageView } from '../../broker/services/coverage-view.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { generatedFederation } from '../support/federation.js';
import { seededRandom } from '../support/random.js';

/** Each replica's coverage as the planner holds it (null: unknown), parsed once per document set. */
const parsed = new WeakMap<readonly CapabilityDocument[], { id: string; moc: SMoc | null; groups: string[] | undefined }[]>();

function expected(docs: readonly CapabilityDocument[], touches: (moc: SMoc | null) => boolean, groups: readonly string[] | 'all' = 'all'): Set<string> {
  let replicas = parsed.get(docs);
  if (replicas === undefined) {
    replicas = docs.flatMap((doc) => doc.datasets.map((d) => ({
      id: d.id, moc: d.coverage === undefined ? null : parseMocAscii(d.coverage).degrade(12), groups: d.access.public ? undefined : d.access.groups ?? [],
    })));
    parsed.set(docs, replicas);
  }
  const out = new Set<string>();
  for (const r of replicas) {
    const visible = groups === 'all' || r.groups === undefined || r.groups.some((g) => groups.includes(g));
    if (visible && touches(r.moc)) out.add(r.id);
  }
  return out;
}

function checkCones(view: CoverageView, docs: readonly CapabilityDocument[], seed: number): void {
  const rand = seededRandom(seed);
  for (let q = 0; q < 40; q++) {
    const ra = rand() * 360;
    const dec = (Math.asin(2 * rand() - 1) * 180) / Math.PI;
    const r = 10 ** (-2 + rand() * 3);
    const groups = q % 3 === 0 ? 'all' : q % 3 === 1 ? [] : ['g2'];
    expect(view.datasetsInCone(ra, dec, r, groups)).toEqual(expected(docs, (m) => m === null || m.intersectsCone(ra, dec, r), groups));
  }
}

describe('CoverageView', () => {
  const first = generatedFederation({ sites: 60, datasets: 80, replicasPerSite: 10, seed: 41 }, 0);
  const second = generatedFederation({ sites: 70, datasets: 80, replicasPerSite: 10, seed: 42 }, 0);

  it('answers cone and MOC searches as the MOC methods, after a full load and after reloads by site', () => {
    const view = new CoverageView();
    expect(view.version).toBe(-1);
    const before = snapshotFromDocuments(first.docs, { version: 3 });
    view.follow(before, undefined);
    expect(view.version).toBe(3);
    checkCones(view, first.docs, 1);
    const area = SMoc.fromCone(100, -20, 15, 5);
    expect(view.datasetsInMoc(area)).toEqual(expected(first.docs, (m) => m === null || m.intersects(area)));
    expect(view.datasetsInMoc(area, ['g1'])).toEqual(expected(first.docs, (m) => m === null || m.intersects(area), ['g1']));
    // The empty region meets unknown coverage only.
    expect(view.datasetsInMoc(SMoc.empty(3))).toEqual(expected(first.docs, (m) => m === null));

    // Sites 20-59 replaced, 60-69 new, 0-9 removed.
    const removed = first.docs.slice(0, 10).map((d) => d.site.id);
    const docs = [...first.docs.slice(10, 20), ...second.docs.slice(20)];
    const changed = new Set([...removed, ...second.docs.slice(20).map((d) => d.site.id)]);
    const after = PlannerSnapshot.advance(before, 4, changed, snapshotFromDocuments(second.docs.slice(20)).sites);
    view.follow(after, changed);
    expect(view.version).toBe(4);
    checkCones(view, docs, 2);
    expect(view.datasetsInMoc(area)).toEqual(expected(docs, (m) => m === null || m.intersects(area)));

    // A full follow of the same snapshot changes nothing.
    view.follow(after, undefined);
    checkCones(view, docs, 2);
  });

  it('after republishes that change a few coverages, access rules and datasets, answers as a fresh view', () => {
    const view = new CoverageView();
    // Each site's first dataset its own, so a coverage left unchanged by mistake shows in the answers.
    const base = first.docs.map((doc, k) => ({ ...doc, datasets: doc.datasets.map((d, i) => (i === 0 ? { ...d, id: `own.${k}`, coverage: '5/1000-1003' } : d)) }));
    const before = snapshotFromDocuments(base, { version: 3 });
    view.follow(before, undefined);
    // Each site: one coverage changed (to unknown for every third), one replica restricted, one dataset swapped.
    const rand = seededRandom(7);
    const docs = base.map((doc, k) => {
      const next = structuredClone(doc);
      const d = next.datasets;
      d[0].coverage = k % 3 === 0 ? undefined : `3/${Math.floor(rand() * 768)}`;
      if (d.length > 1) d[1].access = { public: false, groups: ['g2'] };
      if (d.length > 2) d[2] = { ...d[2], id: `swapped.${k}`, coverage: '2/7' };
      return next;
    });
    const changed = new Set(docs.map((d) => d.site.id));
    const after = PlannerSnapshot.advance(before, 4, changed, snapshotFromDocuments(docs, { previous: before }).sites);
    view.follow(after, changed);
    checkCones(view, docs, 3);
    const fresh = new CoverageView();
    fresh.follow(after, undefined);
    const area = SMoc.fromCone(200, 30, 25, 5);
    for (const groups of ['all', [], ['g2']] as const) {
      const g = groups === 'all' ? 'all' : [...groups];
      expect(view.datasetsInMoc(area, g)).toEqual(fresh.datasetsInMoc(area, g));
      expect(view.datasetsInCone(10, 10, 30, g)).toEqual(fresh.datasetsInCone(10, 10, 30, g));
    }
  });

  it('refuses a bad cone, naming the argument', () => {
    const view = new CoverageView();
    view.follow(snapshotFromDocuments(first.docs), undefined);
    expect(() => view.datasetsInCone(10, 91, 1)).toThrow(/dec must be within/);
    expect(() => view.datasetsInCone(Number.NaN, 0, 1)).toThrow(/ra must be a finite number/);
    expect(() => view.datasetsInCone(10, 0, 0)).toThrow(/radius must be within/);
  });
});
