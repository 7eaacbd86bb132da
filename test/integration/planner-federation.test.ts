/**
 * A generated federation (fixed seed) published to the registry: the planner's snapshot loaded
 * through PlannerView plans exactly as the same documents built in memory, before and after a
 * round of republishing, removals from view and status changes; and the coverage view that
 * follows it answers cone and MOC searches as the MOC methods do replica by replica.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../broker/planner/plan.js';
import { snapshotFromDocuments, type PlannerSnapshot } from '../../broker/planner/snapshot.js';
import { PlannerView } from '../../broker/planner/view.js';
import type { Plan } from '../../broker/planner/types.js';
import { CoverageView } from '../../broker/services/coverage-view.js';
import { Publisher } from '../../broker/services/publisher.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { migrate } from '../../registry/store/migrate.js';
import { recordSiteHealth } from '../../registry/store/queries/harvest.js';
import type { SiteStatus } from '../../registry/store/queries/rows.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { generatedFederation, type GeneratedFederation } from '../support/federation.js';
import { seededRandom } from '../support/random.js';
import { WAITING_TEST_MS } from '../support/wait.js';

/** A plan without the registry version it was made at (the database's differs from the documents'). */
function comparable(p: Plan | string): unknown {
  if (typeof p === 'string') return p;
  const { registryVersion: _, ...rest } = p;
  return rest;
}

function planAll(fed: GeneratedFederation, snapshot: PlannerSnapshot): unknown[] {
  return fed.plans.map((p) => {
    try {
      return comparable(plan(snapshot, p.request, p.caller, p.options));
    } catch (err) {
      return `error ${(err as Error).message}`;
    }
  });
}

/** Set each site's status in the registry as harvests would (a new site is UNKNOWN). */
async function setStatus(db: TestDatabase, status: Record<string, SiteStatus>, only?: ReadonlySet<string>): Promise<void> {
  for (const [id, s] of Object.entries(status)) {
    if (only && !only.has(id)) continue;
    if (s === 'UP') await recordSiteHealth(db.pool, id, true, 3);
    else if (s === 'DEGRADED') {
      await recordSiteHealth(db.pool, id, true, 3);
      await recordSiteHealth(db.pool, id, false, 3);
    }
    else if (s === 'DOWN') for (let k = 0; k < 3; k++) await recordSiteHealth(db.pool, id, false, 3);
  }
}

/** Each replica's coverage as the planner holds it (null: unknown), parsed once per document set. */
const parsed = new WeakMap<readonly CapabilityDocument[], { id: string; moc: SMoc | null; groups: string[] | undefined }[]>();

/** The datasets whose replicas (readable by `groups`, or all) touch the region, replica by replica through the MOC methods. */
function expectedDatasets(docs: readonly CapabilityDocument[], touches: (moc: SMoc | null) => boolean, groups: readonly string[] | 'all'): Set<string> {
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

describe(`a generated federation planned through the registry (${backend})`, () => {
  let db: TestDatabase;
  let publisher: Publisher;
  const coverage = new CoverageView();
  const view = new PlannerView(undefined, coverage);
  const first = generatedFederation({ sites: 40, datasets: 50, replicasPerSite: 12, seed: 21 }, 200);
  const second = generatedFederation({ sites: 44, datasets: 50, replicasPerSite: 12, seed: 22 }, 0);

  beforeAll(async () => {
    db = await freshDatabase({ recordStatements: false });
    await migrate(db.pool);
    publisher = new Publisher(db.pool, configFromYaml(OPEN_FEDERATION));
    for (const doc of first.docs) await publisher.publish(doc.site.id, doc, 'publish');
    await setStatus(db, first.status);
  }, WAITING_TEST_MS);
  afterAll(() => db?.close());

  it('plans from the database exactly as from the same documents, and the coverage view agrees with the MOCs', async () => {
    const snapshot = await view.refresh(db.pool);
    expect(snapshot.sites.map((s) => [s.site.id, s.site.status])).toEqual(first.docs.map((d) => [d.site.id, first.status[d.site.id]]));
    const fromDocs = snapshotFromDocuments(first.docs, { status: first.status });
    expect(snapshot.replicaCount).toBe(fromDocs.replicaCount);
    expect(planAll(first, snapshot)).toEqual(planAll(first, fromDocs));
    expect(coverage.version).toBe(snapshot.version);

    const rand = seededRandom(23);
    for (let q = 0; q < 40; q++) {
      const ra = rand() * 360;
      const dec = (Math.asin(2 * rand() - 1) * 180) / Math.PI;
      const r = 10 ** (-2 + rand() * 3);
      const groups = q % 2 === 0 ? 'all' : ['g1'];
      expect(coverage.datasetsInCone(ra, dec, r, groups)).toEqual(expectedDatasets(first.docs, (m) => m === null || m.intersectsCone(ra, dec, r), groups));
      const area = SMoc.fromCone(ra, dec, r, 6);
      expect(coverage.datasetsInMoc(area, groups)).toEqual(expectedDatasets(first.docs, (m) => m === null || m.intersects(area), groups));
    }
  }, WAITING_TEST_MS);

  it('follows republishing and status changes by site, and plans as the new documents', async () => {
    const before = await view.refresh(db.pool);
    // Sites 10-39 republish new documents, 40-43 join; 0-9 keep theirs.
    const republished = second.docs.slice(10);
    for (const doc of republished) await publisher.publish(doc.site.id, doc, 'publish');
    const status = { ...first.status };
    // A site cannot be made UNKNOWN again: one the new documents call so keeps its status.
    for (const doc of republished) status[doc.site.id] = second.status[doc.site.id] === 'UNKNOWN' ? first.status[doc.site.id] ?? 'UNKNOWN' : second.status[doc.site.id];
    // A status change alone moves a site's registry version too.
    status.g0003 = first.status.g0003 === 'DOWN' ? 'UP' : 'DOWN';
    await setStatus(db, status, new Set([...republished.map((d) => d.site.id), 'g0003']));
    const after = await view.refresh(db.pool);
    expect(after.version).toBeGreaterThan(before.version);
    // Unchanged sites are shared with the previous generation.
    expect(after.site('g0005')).toBe(before.site('g0005'));
    expect(after.site('g0015')).not.toBe(before.site('g0015'));
    const docs = [...first.docs.slice(0, 10), ...republished];
    const fromDocs = snapshotFromDocuments(docs, { status });
    expect(after.sites.map((s) => [s.site.id, s.site.status])).toEqual(docs.map((d) => [d.site.id, status[d.site.id]]));
    expect(planAll(first, after)).toEqual(planAll(first, fromDocs));
    expect(coverage.version).toBe(after.version);
    const rand = seededRandom(24);
    for (let q = 0; q < 30; q++) {
      const ra = rand() * 360;
      const dec = (Math.asin(2 * rand() - 1) * 180) / Math.PI;
      const r = 10 ** (-2 + rand() * 3);
      expect(coverage.datasetsInCone(ra, dec, r)).toEqual(expectedDatasets(docs, (m) => m === null || m.intersectsCone(ra, dec, r), 'all'));
    }
  }, WAITING_TEST_MS);
  it('after a republish keeps the coverage of unchanged MOC texts and reads the changed ones', async () => {
    const before = await view.refresh(db.pool);
    // Site g0003 sends its document again with one coverage changed, one dropped (unknown), one
    // given in other but equal words, one dataset moved to a new id; the rest unchanged.
    const doc = structuredClone(first.docs[3]);
    const [a, b, c, d] = doc.datasets;
    a.coverage = SMoc.fromCone(10, 20, 3, 6).toAscii();
    delete b.coverage;
    c.coverage = c.coverage === undefined ? '0/0-11' : `${c.coverage}\n`;
    d.id = 'moved.elsewhere';
    await publisher.publish(doc.site.id, doc, 'publish');
    const after = await view.refresh(db.pool);
    const site = after.site(doc.site.id)!;
    expect(site).not.toBe(before.site(doc.site.id));
    expect(site.count).toBe(doc.datasets.length);
    for (const dataset of doc.datasets) {
      const i = site.find(dataset.id);
      const want = dataset.coverage === undefined ? null : parseMocAscii(dataset.coverage).degrade(12);
      const held = site.columns.coverage.toSMoc(i);
      expect(held === null ? null : held.toAscii(), dataset.id).toBe(want === null ? null : want.toAscii());
    }
    expect(coverage.version).toBe(after.version);
    const rand = seededRandom(25);
    for (let q = 0; q < 30; q++) {
      const ra = rand() * 360;
      const dec = (Math.asin(2 * rand() - 1) * 180) / Math.PI;
      const r = 10 ** (-2 + rand() * 3);
      const found = coverage.datasetsInCone(ra, dec, r);
      for (const dataset of doc.datasets) {
        const moc = dataset.coverage === undefined ? null : parseMocAscii(dataset.coverage).degrade(12);
        if (moc === null || moc.intersectsCone(ra, dec, r)) expect(found.has(dataset.id), dataset.id).toBe(true);
      }
    }
  }, WAITING_TEST_MS);
});
