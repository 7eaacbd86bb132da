/**
 * Each dataset's replica facts (broker/planner/replica-facts.ts: public, coverage kind, cap,
 * stored together in the order of the dataset's replica list) agree with the sites' own stores,
 * in a snapshot built afresh and in one advanced by reloads: sites republished, removed, added,
 * and a site whose own row alone changed. And the float32 caps (packed-cap.ts) never rule out a
 * cone the coverage touches.
 */
import { describe, expect, it } from 'vitest';
import { PUBLIC } from '../../broker/planner/replica-facts.js';
import { PlannerSnapshot, snapshotFromDocuments } from '../../broker/planner/snapshot.js';
import { Cone } from '../../registry/coverage/cone.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { capMayTouch, roundUp32 } from '../../registry/coverage/packed-cap.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { generatedFederation } from '../support/federation.js';
import { seededRandom } from '../support/random.js';

/** Every dataset's facts against its replicas' sites, replica by replica; returns how many were compared. */
function expectFactsAgree(snapshot: PlannerSnapshot): number {
  const datasets = new Set<string>();
  for (const s of snapshot.sites) for (const d of s.columns.datasets) datasets.add(d);
  let compared = 0;
  for (const dataset of datasets) {
    const list = snapshot.holdersOf(dataset);
    expect(list, dataset).toBeDefined();
    if (list === undefined) continue;
    expect(list.facts.flags.length).toBe(list.length);
    expect(list.facts.caps.length).toBe(4 * list.length);
    for (let j = 0; j < list.length; j++) {
      const site = list.sites[j];
      const i = list.local[j];
      const coverage = site.columns.coverage;
      const where = `${dataset} at ${site.site.id}`;
      expect(list.facts.flags[j], where).toBe(coverage.kind(i) | (site.columns.access[i].public ? PUBLIC : 0));
      expect(Array.from(list.facts.caps.subarray(4 * j, 4 * j + 4)), where).toEqual(Array.from(coverage.caps.subarray(4 * i, 4 * i + 4)));
      compared++;
    }
  }
  return compared;
}

describe('per-dataset replica facts', () => {
  it('agree with the site stores when built afresh and after sites are republished, removed and added, and a site whose own row alone changed', () => {
    const first = generatedFederation({ sites: 200, datasets: 40, replicasPerSite: 10, seed: 21 }, 0);
    const second = generatedFederation({ sites: 220, datasets: 40, replicasPerSite: 10, seed: 22 }, 0);
    const initial = snapshotFromDocuments(first.docs, { status: first.status });
    expect(expectFactsAgree(initial)).toBe(initial.replicaCount);

    // Republished: sites 50-99 get other documents (other datasets, coverage and access).
    let snapshot = initial;
    const republished = second.docs.slice(50, 100);
    snapshot = PlannerSnapshot.advance(snapshot, 2, new Set(republished.map((d) => d.site.id)), snapshotFromDocuments(republished, { previous: snapshot }).sites);
    expect(expectFactsAgree(snapshot)).toBe(snapshot.replicaCount);
    // Removed: sites 0-9 leave.
    const removed = new Set(first.docs.slice(0, 10).map((d) => d.site.id));
    snapshot = PlannerSnapshot.advance(snapshot, 3, removed, []);
    expect(expectFactsAgree(snapshot)).toBe(snapshot.replicaCount);
    // Added: sites 200-219 join.
    const added = second.docs.slice(200);
    snapshot = PlannerSnapshot.advance(snapshot, 4, new Set(added.map((d) => d.site.id)), snapshotFromDocuments(added).sites);
    expect(expectFactsAgree(snapshot)).toBe(snapshot.replicaCount);
    // A site whose own row alone changed keeps its columns, and its datasets their facts.
    const site = snapshot.sites[20];
    const before = snapshot.holdersOf(site.columns.datasets[0]);
    snapshot = PlannerSnapshot.advance(snapshot, 5, new Set([site.site.id]), [site.withRow({ ...site.site, status: 'DOWN' })]);
    expect(snapshot.holdersOf(site.columns.datasets[0])?.facts).toBe(before?.facts);
    expect(expectFactsAgree(snapshot)).toBe(snapshot.replicaCount);

    // The older generations still hold their own facts (copy-on-write).
    expect(expectFactsAgree(initial)).toBe(initial.replicaCount);
    const rebuilt = snapshotFromDocuments([...second.docs.slice(50, 100), ...first.docs.slice(10, 50), ...first.docs.slice(100), ...added]);
    expect(snapshot.replicaCount).toBe(rebuilt.replicaCount);
  });
});

describe('float32 caps', () => {
  it('round margins up to a float32 not below them', () => {
    const rand = seededRandom(5);
    for (let k = 0; k < 10_000; k++) {
      const x = rand() * 4 ** (Math.floor(rand() * 6) - 3);
      const up = roundUp32(x);
      expect(up).toBeGreaterThanOrEqual(x);
      expect(Math.fround(up)).toBe(up);
      expect(up - x).toBeLessThanOrEqual(Math.max(x * 2 ** -23, 1e-45));
    }
    expect(roundUp32(NaN)).toBeNaN();
    expect(roundUp32(0.5)).toBe(0.5);
  });

  it('never rule out a cone the coverage touches, near the edge of the cap', () => {
    const rand = seededRandom(6);
    const b = new PackedCoverageBuilder();
    const mocs: SMoc[] = [];
    for (let k = 0; k < 200; k++) {
      const moc = SMoc.fromCone(rand() * 360, (Math.asin(2 * rand() - 1) * 180) / Math.PI, 0.05 + rand() * 20, Math.floor(rand() * 10));
      mocs.push(moc);
      b.addMoc(moc);
    }
    const store = b.finish();
    let touched = 0;
    for (let i = 0; i < mocs.length; i++) {
      const reach = store.reach(i);
      if (reach === null) continue;
      // Cones whose centres sit around the cap's rim, where rounding could matter.
      const dec0 = (Math.asin(reach.z) * 180) / Math.PI;
      const ra0 = (Math.atan2(reach.y, reach.x) * 180) / Math.PI;
      for (let q = 0; q < 40; q++) {
        const radius = 0.01 + rand() * 2;
        const away = ((reach.margin * 180) / Math.PI) * (0.8 + 0.4 * rand()) + radius * rand();
        const bearing = rand() * 2 * Math.PI;
        const dec = Math.max(-90, Math.min(90, dec0 + away * Math.cos(bearing)));
        const ra = ra0 + (away * Math.sin(bearing)) / Math.max(0.05, Math.cos((dec0 * Math.PI) / 180));
        const cone = new Cone(((ra % 360) + 360) % 360, dec, radius);
        if (mocs[i].intersectsCone(cone.raDeg, cone.decDeg, radius)) {
          touched++;
          expect(capMayTouch(store.caps, i, cone)).toBe(true);
        }
      }
    }
    expect(touched).toBeGreaterThan(100);
  });
});
