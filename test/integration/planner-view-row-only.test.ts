/**
 * A change of a site's own row alone (a republish that wrote no row of its replicas, services,
 * compute or images; a health change) reaches the registry view without reloading the site's
 * replicas: the view takes the new row, shares the replicas' columns, and its followers (the
 * coverage index, the catalogue) keep what they hold. A view that missed a row change between
 * two refreshes still reloads the site, and an incremental view always equals a full load. The
 * catalogue, given a site read again, rebuilds only the datasets whose replica facts moved, and
 * still equals a full read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlannerSnapshot } from '../../broker/planner/index.js';
import { PlannerView } from '../../broker/planner/view.js';
import { CatalogueView } from '../../broker/services/catalogue-view.js';
import { CoverageView } from '../../broker/services/coverage-view.js';
import { Publisher } from '../../broker/services/publisher.js';
import { migrate } from '../../registry/store/migrate.js';
import { recordSiteHealth } from '../../registry/store/queries/harvest.js';
import { OPEN_FEDERATION, configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

const datasets = (site: string, rows: number) => [
  { id: 'shared.gaia', table: `${site}.gaia`, rows, coverage: '3/0-40' },
  { id: `${site}.own`, table: `${site}.own`, rows: 10, coverage: '2/100-120' },
];
const doc = (site: string, rows: number, asOf: string) => documentFor(site, datasets(site, rows), { asOf });

/** A view with both followers, as the broker wires it. */
function viewWithFollowers(): { view: PlannerView; coverage: CoverageView; catalogue: CatalogueView } {
  const coverage = new CoverageView();
  const catalogue = new CatalogueView();
  return { view: new PlannerView(undefined, coverage, catalogue), coverage, catalogue };
}

/** What a snapshot holds of every site, as plain data (to compare an incremental view with a full load). */
function contents(s: PlannerSnapshot): unknown {
  return s.sites.map((site) => ({
    row: { ...site.site, registryVersion: undefined },
    down: s.siteDown[s.positionOf(site.site.id)],
    datasets: [...site.columns.datasets],
    numbers: [...site.columns.numbers],
    coverage: site.columns.datasets.map((_, i) => site.columns.coverage.toSMoc(i)?.toAscii() ?? null),
  }));
}

describe(`the registry view takes a site's own row without reloading its replicas (${backend})`, () => {
  let db: TestDatabase;
  let publisher: Publisher;

  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
    publisher = new Publisher(db.pool, configFromYaml(OPEN_FEDERATION));
    for (const site of ['alpha', 'beta', 'gamma']) await publisher.publish(site, doc(site, 100, '2026-11-01T00:00:00Z'), 'publish');
  });
  afterAll(() => db?.close());

  it('a republish that writes no row: new asOf, the same replica columns, no replica read, followers unchanged', async () => {
    const { view, coverage, catalogue } = viewWithFollowers();
    await view.refresh(db.pool);
    const before = view.snapshot.site('alpha')!;
    const heldBefore = catalogue.held('shared.gaia');
    const coneBefore = [...coverage.datasetsInCone(10, 10, 5)].sort();

    const published = await publisher.publish('alpha', doc('alpha', 100, '2026-11-02T00:00:00Z'), 'publish');
    expect(published.rowsWritten).toEqual({ upserted: 0, deleted: 0 });
    const statements = db.statements.length;
    await view.refresh(db.pool, published.registryVersion);
    const read = db.statements.slice(statements).join('\n');

    const after = view.snapshot.site('alpha')!;
    expect(view.version).toBe(published.registryVersion);
    expect(after.site.asOf?.toISOString()).toBe('2026-11-02T00:00:00.000Z');
    expect(after).not.toBe(before);
    expect(after.columns).toBe(before.columns);
    // Only the site's row was read: no replica, coverage, column or catalogue statement.
    expect(read).toMatch(/FROM sites WHERE id = ANY/);
    expect(read).not.toMatch(/FROM replicas|FROM coverage|FROM replica_columns|FROM datasets/);
    // The dataset's list now names the new site object, with the same replicas.
    const holders = view.snapshot.holdersOf('shared.gaia')!;
    expect(holders.sites.map((s) => s.site.id)).toEqual(['alpha', 'beta', 'gamma']);
    expect(holders.sites[0]).toBe(after);
    expect(catalogue.version).toBe(published.registryVersion);
    expect(catalogue.held('shared.gaia')).toBe(heldBefore);
    expect([...coverage.datasetsInCone(10, 10, 5)].sort()).toEqual(coneBefore);
  });

  it('a health change alone marks the site DOWN in the view without reloading its replicas', async () => {
    const { view } = viewWithFollowers();
    await view.refresh(db.pool);
    const before = view.snapshot.site('beta')!;
    expect(await recordSiteHealth(db.pool, 'beta', false, 1)).toBe('DOWN');
    await view.refresh(db.pool);
    const after = view.snapshot.site('beta')!;
    expect(after.site.status).toBe('DOWN');
    expect(view.snapshot.siteDown[view.snapshot.positionOf('beta')]).toBe(true);
    expect(after.columns).toBe(before.columns);
    expect(await recordSiteHealth(db.pool, 'beta', true, 1)).toBe('UP');
    await view.refresh(db.pool);
    expect(view.snapshot.siteDown[view.snapshot.positionOf('beta')]).toBe(false);
  });

  it('a view that missed a row change before a row-only one reloads the site (another broker following)', async () => {
    const { view: other, catalogue } = viewWithFollowers();
    await other.refresh(db.pool);
    const before = other.snapshot.site('gamma')!;
    // Rows change (new row count), then an unchanged republish: the site's rows_version is the first.
    const changed = await publisher.publish('gamma', doc('gamma', 555, '2026-11-03T00:00:00Z'), 'publish');
    expect(changed.rowsWritten.upserted).toBeGreaterThan(0);
    const same = await publisher.publish('gamma', doc('gamma', 555, '2026-11-04T00:00:00Z'), 'publish');
    expect(same.rowsWritten).toEqual({ upserted: 0, deleted: 0 });
    await other.refresh(db.pool);
    const after = other.snapshot.site('gamma')!;
    expect(after.columns).not.toBe(before.columns);
    expect(after.rows(after.find('shared.gaia'))).toBe(555);
    expect(after.site.asOf?.toISOString()).toBe('2026-11-04T00:00:00.000Z');
    expect(catalogue.held('shared.gaia')!.replicas.find((r) => r.siteId === 'gamma')!.table).toBe('gamma.gaia');
  });

  it('an incremental view through row-only and row changes equals a full load, followers included', async () => {
    const { view, coverage } = viewWithFollowers();
    await view.refresh(db.pool);
    await publisher.publish('alpha', doc('alpha', 100, '2026-11-05T00:00:00Z'), 'publish');
    await recordSiteHealth(db.pool, 'alpha', false, 1);
    await view.refresh(db.pool);
    await publisher.publish('beta', documentFor('beta', [{ id: 'beta.new', table: 'beta.new', coverage: '1/5' }], { asOf: '2026-11-05T00:00:00Z' }), 'publish');
    await publisher.publish('alpha', doc('alpha', 100, '2026-11-06T00:00:00Z'), 'publish');
    await view.refresh(db.pool);

    const { view: full, coverage: fullCoverage } = viewWithFollowers();
    await full.refresh(db.pool);
    expect(view.version).toBe(full.version);
    expect(contents(view.snapshot)).toEqual(contents(full.snapshot));
    for (const [ra, dec, r] of [[10, 10, 5], [200, -30, 20], [0, 0, 90]]) {
      expect([...coverage.datasetsInCone(ra, dec, r)].sort()).toEqual([...fullCoverage.datasetsInCone(ra, dec, r)].sort());
    }
  });

  it('the catalogue after republishes that change a few replicas equals a full read', async () => {
    const { view, catalogue } = viewWithFollowers();
    await view.refresh(db.pool);
    const base = (site: string) => [
      { id: 'cat.a', table: `${site}.a`, title: 'A table' },
      { id: 'cat.b', table: `${site}.b` },
      { id: 'cat.c', table: `${site}.c`, access: { public: false, groups: ['g1'] } },
    ];
    await publisher.publish('delta', documentFor('delta', base('delta'), { asOf: '2026-11-10T00:00:00Z' }), 'publish');
    await view.refresh(db.pool);
    const heldA = catalogue.held('cat.a');
    // One replica's title, one's groups and columns change; cat.b is swapped for cat.d, which fills in a title.
    const next = documentFor('delta', [
      { id: 'cat.a', table: 'delta.a', title: 'A table, renamed' },
      { id: 'cat.c', table: 'delta.c', access: { public: false, groups: ['g1', 'g2'] }, columns: [{ name: 'ra', datatype: 'double', ucd: 'pos.eq.ra' }, { name: 'dec', datatype: 'double', ucd: 'pos.eq.dec' }] },
      { id: 'cat.d', table: 'delta.d', title: 'D' },
      { id: 'cat.e', table: 'delta.e' },
    ], { asOf: '2026-11-11T00:00:00Z' });
    await publisher.publish('delta', next, 'publish');
    await publisher.publish('epsilon', documentFor('epsilon', [{ id: 'cat.e', table: 'epsilon.e', title: 'E' }], { asOf: '2026-11-11T00:00:00Z' }), 'publish');
    await view.refresh(db.pool);
    expect(catalogue.held('cat.a')).not.toBe(heldA);
    expect(catalogue.held('cat.b')).toBeUndefined();

    const { view: full, catalogue: fullCatalogue } = viewWithFollowers();
    await full.refresh(db.pool);
    expect(catalogue.version).toBe(fullCatalogue.version);
    for (const visibility of ['all', [], ['g2']] as const) {
      for (const text of [undefined, 'renamed', 'delta', 'cat.']) {
        const search = { text, visibility: visibility === 'all' ? 'all' as const : [...visibility], limit: 100, offset: 0 };
        expect(catalogue.search(search)).toEqual(fullCatalogue.search(search));
      }
    }
    for (const id of ['cat.a', 'cat.b', 'cat.c', 'cat.d', 'cat.e', 'shared.gaia']) {
      expect(JSON.parse(JSON.stringify(catalogue.held(id) ?? null))).toEqual(JSON.parse(JSON.stringify(fullCatalogue.held(id) ?? null)));
    }
  });
});
