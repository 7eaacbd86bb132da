/**
 * A publish through the wired publisher takes the registry view (planner snapshot, coverage index,
 * catalogue) one version forward from the publish itself, reading nothing back, when the view is
 * exactly one version behind; the view so advanced equals one loaded from the database after
 * every publish of a sequence (new sites before, between and after the others; changed, removed
 * and swapped datasets, coverage, columns, services, compute, images; a republish that wrote no
 * row). On a version gap it loads from the database instead, and still equals a full load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../broker/factory.js';
import type { PlannerSnapshot } from '../../broker/planner/index.js';
import { PlannerView } from '../../broker/planner/view.js';
import { CatalogueView } from '../../broker/services/catalogue-view.js';
import { CoverageView } from '../../broker/services/coverage-view.js';
import type { CapabilityDocument, DatasetDoc } from '../../registry/model/capability.js';
import { migrate } from '../../registry/store/migrate.js';
import { recordSiteHealth } from '../../registry/store/queries/harvest.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

/** A view with both followers, as the broker wires it, loaded whole from the database. */
async function loadedView(db: TestDatabase): Promise<{ view: PlannerView; coverage: CoverageView; catalogue: CatalogueView }> {
  const coverage = new CoverageView();
  const catalogue = new CatalogueView();
  const view = new PlannerView(undefined, coverage, catalogue);
  await view.refresh(db.pool);
  return { view, coverage, catalogue };
}

/** Everything a snapshot holds, as plain data. */
function contents(s: PlannerSnapshot): unknown {
  return {
    version: s.version,
    sites: s.sites.map((site) => ({
      row: site.site,
      preference: site.preference,
      down: s.siteDown[s.positionOf(site.site.id)],
      services: [...site.services.entries()],
      pools: site.pools,
      images: site.images,
      datasets: [...site.columns.datasets],
      numbers: [...site.columns.numbers],
      serviceIds: [...site.columns.serviceIds],
      tables: [...site.columns.tables],
      positions: [...site.columns.positions],
      access: [...site.columns.access],
      coverage: site.columns.datasets.map((_, i) => site.columns.coverage.toSMoc(i)?.toAscii() ?? null),
    })),
    holders: [...new Set(s.sites.flatMap((site) => [...site.columns.datasets]))].sort().map((d) => {
      const list = s.holdersOf(d);
      return { d, sites: list?.sites.map((x) => x.site.id), local: list ? [...list.local] : undefined, indexed: list?.index !== undefined };
    }),
    replicaCount: s.replicaCount,
  };
}

const CONES: [number, number, number][] = [[10, 10, 5], [200, -30, 20], [0, 0, 90], [45, 60, 3]];

/** What the catalogue answers for every dataset, and for a few searches. */
function catalogueContents(c: CatalogueView): unknown {
  const all = c.search({ visibility: 'all', limit: 10_000, offset: 0 }) ?? [];
  return {
    version: c.version,
    size: c.size,
    all,
    // What a dataset's nested fields are answered from (the entry's internals follow the order changes came in).
    held: all.map((row) => {
      const held = c.held(row.id);
      return held === undefined ? null : { replicas: JSON.parse(JSON.stringify(held.replicas)), columnsExact: held.columnsExact };
    }),
    searches: [
      c.search({ text: 'renamed', visibility: 'all', limit: 100, offset: 0 }),
      c.search({ ucd: 'pos.eq', visibility: [], limit: 100, offset: 0 }),
      c.search({ site: 'mid', visibility: ['g2'], limit: 100, offset: 0 }),
      c.search({ visibility: ['g1'], limit: 3, offset: 1 }),
    ],
  };
}

const dataset = (id: string, table: string, more: Partial<DatasetDoc> = {}): Partial<DatasetDoc> => ({ id, table, ...more });

/** A document with two services, a compute pool and two images (refs given out of order). */
function site(id: string, datasets: Partial<DatasetDoc>[], asOf: string, more: Partial<CapabilityDocument> = {}): CapabilityDocument {
  const base = documentFor(id, datasets, { asOf });
  return {
    ...base,
    services: [...base.services, { id: 'sia', type: 'sia', url: `https://${id}.example.org/sia` }],
    compute: [{ id: 'batch', kind: 'batch', cores: 64, memoryGb: 256, freeCores: 10 }],
    images: [
      { ref: `registry.example.org/${id}/tools:2`, types: ['notebook'], software: ['astropy'] },
      { ref: `registry.example.org/${id}/base:1`, types: ['batch'] },
    ],
    ...more,
  };
}

describe(`the registry view takes a publish from the publish itself (${backend})`, () => {
  let db: TestDatabase;
  let services: Services;

  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
    services = createServices(configFromYaml(OPEN_FEDERATION), db.pool, db.kind);
    await services.planner.refresh(db.pool);
  });
  afterAll(() => db?.close());

  /** Publish through the wired publisher; the view must have taken it from the publish (or not) and equal a full load. */
  async function publishAndCompare(id: string, doc: CapabilityDocument, fromPublish: boolean): Promise<void> {
    const result = await services.publisher.publish(id, doc, 'publish');
    expect(services.planner.version).toBe(result.registryVersion);
    expect(services.planner.lastBuild?.fromPublish === true).toBe(fromPublish);
    const full = await loadedView(db);
    expect(full.view.version).toBe(result.registryVersion);
    expect(contents(services.planner.snapshot)).toEqual(contents(full.view.snapshot));
    expect(catalogueContents(services.catalogue)).toEqual(catalogueContents(full.catalogue));
    expect(services.coverage.version).toBe(full.coverage.version);
    for (const [ra, dec, r] of CONES) {
      expect([...services.coverage.datasetsInCone(ra, dec, r)].sort()).toEqual([...full.coverage.datasetsInCone(ra, dec, r)].sort());
      expect([...services.coverage.datasetsInCone(ra, dec, r, ['g1'])].sort()).toEqual([...full.coverage.datasetsInCone(ra, dec, r, ['g1'])].sort());
    }
  }

  it('equals a load from the database after each of a sequence of publishes', async () => {
    const t = (day: number) => `2026-11-${String(day).padStart(2, '0')}T00:00:00Z`;
    // New sites: one first, one last, one between (the catalogue places each by the database's order).
    await publishAndCompare('mid', site('mid', [
      dataset('shared.gaia', 'mid.gaia', { coverage: '3/0-40', rows: 100 }),
      dataset('shared.sdss', 'mid.sdss'),
      dataset('mid.own', 'mid.own', { title: 'Mid own', coverage: '2/100-120', access: { public: false, groups: ['g1'] } }),
    ], t(1)), true);
    await publishAndCompare('zeta', site('zeta', [
      dataset('shared.gaia', 'zeta.gaia', { title: 'Gaia', coverage: '3/0-40' }),
      dataset('zeta.own', 'zeta.own', { coverage: '1/5', access: { public: false, groups: ['g2'] } }),
    ], t(1)), true);
    await publishAndCompare('alpha', site('alpha', [
      dataset('shared.sdss', 'alpha.sdss', { description: 'SDSS', coverage: '0/1' }),
      dataset('shared.gaia', 'alpha.gaia'),
    ], t(1)), true);

    // mid changes: a row count, one coverage, one column list, a dataset swapped (mid.own goes:
    // its dataset is deleted; shared.tmass arrives), a service dropped, free cores, an image gone.
    await publishAndCompare('mid', site('mid', [
      dataset('shared.gaia', 'mid.gaia', { coverage: '3/0-41', rows: 200, title: 'Gaia, renamed here' }),
      dataset('shared.sdss', 'mid.sdss', { position: { ra: 'RA', dec: 'dec' }, columns: [{ name: 'RA', canonical: 'ra', datatype: 'double', ucd: 'pos.eq.ra' }, { name: 'dec', datatype: 'double', ucd: 'pos.eq.dec' }] }),
      dataset('shared.tmass', 'mid.tmass', { title: '2MASS', access: { public: false, groups: ['g1', 'g2'] } }),
    ], t(2), {
      compute: [{ id: 'batch', kind: 'batch', cores: 64, memoryGb: 256, freeCores: 3 }, { id: 'gpu', kind: 'batch', cores: 8, memoryGb: 64, gpus: 2 }],
      images: [{ ref: 'registry.example.org/mid/base:1', types: ['batch'] }],
    }), true);
    expect(services.catalogue.held('mid.own')).toBeUndefined();

    // An unchanged republish (only asOf moves): the site's own row alone.
    await publishAndCompare('mid', site('mid', [
      dataset('shared.gaia', 'mid.gaia', { coverage: '3/0-41', rows: 200, title: 'Gaia, renamed here' }),
      dataset('shared.sdss', 'mid.sdss', { position: { ra: 'RA', dec: 'dec' }, columns: [{ name: 'RA', canonical: 'ra', datatype: 'double', ucd: 'pos.eq.ra' }, { name: 'dec', datatype: 'double', ucd: 'pos.eq.dec' }] }),
      dataset('shared.tmass', 'mid.tmass', { title: '2MASS', access: { public: false, groups: ['g1', 'g2'] } }),
    ], t(3), {
      compute: [{ id: 'batch', kind: 'batch', cores: 64, memoryGb: 256, freeCores: 3 }, { id: 'gpu', kind: 'batch', cores: 8, memoryGb: 64, gpus: 2 }],
      images: [{ ref: 'registry.example.org/mid/base:1', types: ['batch'] }],
    }), true);

    // zeta lets go of shared.gaia (others still hold it: not deleted), loses its coverage, keeps one service.
    await publishAndCompare('zeta', documentFor('zeta', [dataset('zeta.own', 'zeta.own', { access: { public: false, groups: ['g2'] } })], { asOf: t(4) }), true);
    // alpha lets go of everything; a dataset it alone held would go with it.
    await publishAndCompare('alpha', documentFor('alpha', [dataset('alpha.only', 'alpha.only', { coverage: '4/10-20' })], { asOf: t(5) }), true);
    await publishAndCompare('alpha', documentFor('alpha', [], { asOf: t(6) }), true);
    expect(services.catalogue.held('alpha.only')).toBeUndefined();
  });

  it('loads from the database when a version went by that this process did not make', async () => {
    // A health change the view has not followed: the next publish is two versions ahead of it.
    expect(await recordSiteHealth(db.pool, 'zeta', false, 1)).toBe('DOWN');
    await publishAndCompare('mid', site('mid', [dataset('shared.gaia', 'mid.gaia', { coverage: '3/0-42', rows: 300 })], '2026-11-07T00:00:00Z'), false);
    expect(services.planner.snapshot.siteDown[services.planner.snapshot.positionOf('zeta')]).toBe(true);
    // Back in step: the next publish is taken from itself again.
    await publishAndCompare('zeta', documentFor('zeta', [dataset('zeta.back', 'zeta.back', { coverage: '2/7' })], { asOf: '2026-11-08T00:00:00Z' }), true);
  });

  it('another view one version behind a publish it did not make loads it from the database', async () => {
    const other = await loadedView(db);
    const result = await services.publisher.publish('beta', documentFor('beta', [dataset('shared.gaia', 'beta.gaia')], { asOf: '2026-11-09T00:00:00Z' }), 'publish');
    await other.view.refresh(db.pool, result.registryVersion);
    expect(other.view.lastBuild?.fromPublish).toBeUndefined();
    expect(contents(other.view.snapshot)).toEqual(contents(services.planner.snapshot));
    expect(catalogueContents(other.catalogue)).toEqual(catalogueContents(services.catalogue));
  });
});
