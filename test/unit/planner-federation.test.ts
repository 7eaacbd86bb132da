/**
 * The compact snapshot (columns and packed coverage, issue 13) plans exactly as the planner did
 * before it: over generated federations with a fixed seed, every Plan, serialised, hashes to the
 * value the previous snapshot (one object and one SMoc per replica) gave for the same calls. The
 * verdicts are also checked against the MOC methods directly, and a snapshot advanced by reloads
 * against one built afresh.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { plan } from '../../broker/planner/plan.js';
import { INDEX_MIN_REPLICAS, PlannerSnapshot, snapshotFromDocuments } from '../../broker/planner/snapshot.js';
import type { Plan } from '../../broker/planner/types.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { FEDERATION_NOW, POPULAR, generatedFederation, type FederationOptions, type GeneratedFederation } from '../support/federation.js';
import { seededRandom } from '../support/random.js';

function planAll(fed: GeneratedFederation, snapshot: PlannerSnapshot): (Plan | string)[] {
  return fed.plans.map((p) => {
    try {
      return plan(snapshot, p.request, p.caller, p.options);
    } catch (err) {
      return `error ${(err as Error).message}`;
    }
  });
}

/** A plan as the planner gave it before the sites without data were counted: every site a candidate. */
function everySitePlan(p: Plan): unknown {
  return { chosen: p.chosen, candidates: p.withoutData.everySite(p.candidates), formula: p.formula, registryVersion: p.registryVersion };
}

function hashOf(plans: (Plan | string)[]): string {
  const h = createHash('sha256');
  for (const p of plans) h.update(typeof p === 'string' ? p : JSON.stringify(everySitePlan(p)));
  return h.digest('hex');
}

/**
 * Hashes of every plan (JSON.stringify of each Plan, in order, every site a candidate) over these
 * federations, computed with the planner as it was before the compact snapshot (commit eb641fd).
 */
const BEFORE: [FederationOptions, number, string][] = [
  [{ sites: 300, datasets: 300, replicasPerSite: 30, seed: 7 }, 300, '49f46e66421a4f8ba3650de09fc2122634ebb67f55a0c652be5d9ecddd7798c5'],
  // Some 300 replicas per dataset: every dataset is planned through its sky index.
  [{ sites: 600, datasets: 20, replicasPerSite: 10, seed: 11 }, 300, '44ef98de3bfd81f8ee95372b7b0e9a71560f02c2fae5f37f647b9b0e9f04fce7'],
];

describe('plans over generated federations (fixed seeds)', () => {
  it.each(BEFORE)('equal the previous planner\'s plans exactly (%o, %i plans)', (opts, count, before) => {
    const fed = generatedFederation(opts, count);
    const snapshot = snapshotFromDocuments(fed.docs, { status: fed.status });
    // Every site holds POPULAR, so it is planned through a sky index of its own.
    expect(snapshot.coverageOf(POPULAR)).toBeDefined();
    expect(opts.sites).toBeGreaterThanOrEqual(INDEX_MIN_REPLICAS);
    const plans = planAll(fed, snapshot);
    expect(plans.filter((p) => typeof p !== 'string' && p.chosen !== null).length).toBeGreaterThan(count / 4);
    expect(hashOf(plans)).toBe(before);
  });

  it('says NOT_COVERED, FORBIDDEN and estimated rows as the MOC methods say, replica by replica', () => {
    const fed = generatedFederation({ sites: 300, datasets: 300, replicasPerSite: 30, seed: 7 }, 0);
    const snapshot = snapshotFromDocuments(fed.docs);
    const rand = seededRandom(8);
    const held = new Map<string, { site: string; text: string | undefined; rows: number | undefined; groups: string[] | undefined }[]>();
    for (const doc of fed.docs) {
      for (const d of doc.datasets) {
        const list = held.get(d.id) ?? [];
        list.push({ site: doc.site.id, text: d.coverage, rows: d.rows, groups: d.access.public ? undefined : d.access.groups ?? [] });
        held.set(d.id, list);
      }
    }
    const ids = [...held.keys()];
    for (let q = 0; q < 80; q++) {
      const dataset = q % 5 === 0 ? POPULAR : ids[Math.floor(rand() * ids.length)];
      const cone = { ra: rand() * 360, dec: (Math.asin(2 * rand() - 1) * 180) / Math.PI, radiusDeg: 10 ** (-2 + rand() * 3) };
      const groups = rand() < 0.5 ? ['g1'] : [];
      const p = plan(snapshot, { kind: 'CONTAINER', datasets: [dataset], region: { cone } }, { groups }, { now: FEDERATION_NOW, requireAllLocal: true });
      for (const r of held.get(dataset)!) {
        const c = p.candidates.find((x) => x.site === r.site)!;
        const moc = r.text === undefined ? null : parseMocAscii(r.text).degrade(12);
        const covered = moc === null || moc.intersectsCone(cone.ra, cone.dec, cone.radiusDeg);
        const readable = r.groups === undefined || r.groups.some((g) => groups.includes(g));
        const codes = c.reasons.map((x) => x.code);
        expect(codes.includes('FORBIDDEN')).toBe(!readable);
        expect(codes.includes('NOT_COVERED')).toBe(readable && !covered);
        if (c.eligible && r.rows !== undefined) {
          const fraction = moc === null ? SMoc.fullSky().coneOverlapFraction(cone.ra, cone.dec, cone.radiusDeg) : moc.coneOverlapFraction(cone.ra, cone.dec, cone.radiusDeg);
          expect(c.estimatedRows).toBe(r.rows * fraction);
        }
      }
    }
  });

  it('plans the same over a snapshot advanced site by site as over one built afresh', () => {
    const first = generatedFederation({ sites: 300, datasets: 60, replicasPerSite: 12, seed: 9 }, 150);
    const second = generatedFederation({ sites: 320, datasets: 60, replicasPerSite: 12, seed: 10 }, 0);
    // Sites 0-99 keep their documents, 100-299 are republished, 300-319 are new; ten of the first are removed.
    const docs = [...first.docs.slice(0, 100), ...second.docs.slice(100)];
    const removed = new Set(first.docs.slice(90, 100).map((d) => d.site.id));
    const after = docs.filter((d) => !removed.has(d.site.id));
    const status = { ...first.status, ...second.status };
    const initial = snapshotFromDocuments(first.docs, { status });
    let advanced = initial;
    // A few reloads of a few sites each, as the registry follower makes them.
    const changedIds = [...removed, ...second.docs.slice(100).map((d) => d.site.id)];
    for (let k = 0; k < changedIds.length; k += 37) {
      const changed = new Set(changedIds.slice(k, k + 37));
      const fresh = snapshotFromDocuments(after.filter((d) => changed.has(d.site.id)), { status });
      advanced = PlannerSnapshot.advance(advanced, advanced.version + 1, changed, fresh.sites);
    }
    const rebuilt = snapshotFromDocuments(after, { status, version: advanced.version });
    expect(advanced.replicaCount).toBe(rebuilt.replicaCount);
    expect(advanced.siteIds).toEqual(rebuilt.siteIds);
    // Sites kept are shared with the first generation, not rebuilt.
    expect(advanced.site('g0005')).toBe(initial.site('g0005'));
    expect(advanced.site('g0150')).not.toBe(initial.site('g0150'));
    expect(advanced.site('g0095')).toBeUndefined();
    expect(planAll(first, advanced)).toEqual(planAll(first, rebuilt));
  });

  it('replaces a site given to advance even when the changed set leaves it out, once when given twice', () => {
    const fed = generatedFederation({ sites: 30, datasets: 20, replicasPerSite: 6, seed: 12 }, 60);
    const other = generatedFederation({ sites: 30, datasets: 20, replicasPerSite: 6, seed: 13 }, 0);
    const start = snapshotFromDocuments(fed.docs);
    const newer = snapshotFromDocuments([other.docs[4], other.docs[7]]).sites;
    const advanced = PlannerSnapshot.advance(start, 2, new Set(['g0007']), [newer[0], newer[1], newer[1]]);
    const docs = fed.docs.map((d, i) => (i === 4 || i === 7 ? other.docs[i] : d));
    const rebuilt = snapshotFromDocuments(docs, { version: 2 });
    expect(advanced.siteIds).toEqual(rebuilt.siteIds);
    expect(advanced.replicaCount).toBe(rebuilt.replicaCount);
    expect(planAll(fed, advanced)).toEqual(planAll(fed, rebuilt));
  });
});
