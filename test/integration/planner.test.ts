import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../broker/planner/plan.js';
import { snapshotFromDocuments } from '../../broker/planner/snapshot.js';
import { PlannerView } from '../../broker/planner/view.js';
import { Publisher } from '../../broker/services/publisher.js';
import { migrate } from '../../registry/store/migrate.js';
import { recordSiteHealth } from '../../registry/store/queries/harvest.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

const GAIA = 'gaia_dr3.gaia_source';
const IMAGE = 'images.example.org/astro/astroml:24.07';
const batch = (freeCores: number, queueWaitS: number) => [{ id: 'batch', kind: 'batch' as const, cores: 100, memoryGb: 400, freeCores, queueWaitS }];
const images = [{ ref: IMAGE, arch: 'amd64' as const, types: ['headless' as const] }];

const north = (free: number) => documentFor('north', [{ id: GAIA, table: 'gaiadr3.gaia_source', coverage: '0/0-3', rows: 1e6 }], { compute: batch(free, 60), images });
const everywhere = documentFor('everywhere', [{ id: GAIA, table: 'gaia.source', coverage: '0/0-11', rows: 1e6 }], { compute: batch(50, 60), images });
const empty = documentFor('empty', [], { compute: batch(100, 0), images });

describe(`planning over the registry through PlannerView (${backend})`, () => {
  let db: TestDatabase;
  let publisher: Publisher;
  const view = new PlannerView();
  const now = Date.parse('2026-11-23T13:00:00Z');

  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
    publisher = new Publisher(db.pool, configFromYaml(OPEN_FEDERATION));
    for (const doc of [north(90), everywhere, empty]) await publisher.publish(doc.site.id, doc, 'publish');
    for (const id of ['north', 'everywhere', 'empty']) await recordSiteHealth(db.pool, id, true, 3);
  });
  afterAll(() => db?.close());

  it('plans from the database exactly as from the same documents', async () => {
    const snapshot = await view.refresh(db.pool);
    const request = { kind: 'CONTAINER' as const, datasets: [GAIA], image: IMAGE, cores: 4, region: { cone: { ra: 10, dec: 70, radiusDeg: 1 } } };
    const fromDb = plan(snapshot, request, { groups: [] }, { now });
    expect(fromDb.chosen?.site).toBe('north');
    expect(fromDb.candidates.find((c) => c.site === 'empty')).toBeUndefined();
    expect(fromDb.withoutData.verdict('empty')!.reasons.map((r) => r.code)).toEqual(['NO_REPLICA']);
    expect(fromDb.withoutData.ids()).toEqual(['empty']);
    const fromDocs = plan(snapshotFromDocuments([north(90), everywhere, empty]), request, { groups: [] }, { now });
    expect(fromDb.candidates.map((c) => [c.site, c.eligible, c.score.toFixed(6), c.reasons.map((r) => r.code)]))
      .toEqual(fromDocs.candidates.map((c) => [c.site, c.eligible, c.score.toFixed(6), c.reasons.map((r) => r.code)]));
    // A region outside the northern cap leaves only the all-sky replica.
    const south = plan(snapshot, { ...request, region: { cone: { ra: 10, dec: -70, radiusDeg: 1 } } }, { groups: [] }, { now });
    expect(south.chosen?.site).toBe('everywhere');
    expect(south.candidates.find((c) => c.site === 'north')!.reasons.map((r) => r.code)).toEqual(['NOT_COVERED']);
  });

  it('follows a republish and a status change, reloading only what changed', async () => {
    const before = await view.refresh(db.pool);
    const request = { kind: 'CONTAINER' as const, datasets: [GAIA], image: IMAGE, region: { cone: { ra: 10, dec: 70, radiusDeg: 1 } } };
    expect(plan(before, request, { groups: [] }, { now }).chosen?.site).toBe('north');
    // North fills up: its load now outweighs the other site.
    await publisher.publish('north', north(0), 'publish');
    const statements = db.statements.length;
    const after = await view.refresh(db.pool);
    expect(after.version).toBeGreaterThan(before.version);
    expect(plan(after, request, { groups: [] }, { now }).chosen?.site).toBe('everywhere');
    expect(after.site('everywhere')).toBe(before.site('everywhere'));
    expect(after.site('north')).not.toBe(before.site('north'));
    // The old snapshot is untouched by the reload.
    expect(plan(before, request, { groups: [] }, { now }).chosen?.site).toBe('north');
    expect(db.statements.length - statements).toBeLessThan(15);

    for (let i = 0; i < 3; i++) await recordSiteHealth(db.pool, 'everywhere', false, 3);
    const latest = await view.refresh(db.pool);
    const down = plan(latest, request, { groups: [] }, { now });
    expect(down.chosen?.site).toBe('north');
    expect(down.candidates.find((c) => c.site === 'everywhere')!.reasons.map((r) => r.code)).toEqual(['SITE_DOWN']);
    // Nothing changed: the version check alone, and the same snapshot.
    const n = db.statements.length;
    expect(await view.refresh(db.pool)).toBe(latest);
    expect(db.statements.slice(n).every((q) => /registry_state|^(BEGIN|COMMIT)/i.test(q.trim()))).toBe(true);
  });
});
