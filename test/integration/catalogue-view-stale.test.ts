/**
 * A catalogue that was handed sites it never read answers nothing from memory (searches go to
 * SQL) until a read has taken everything again, even when the next change moves only sites' own rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlannerSnapshot } from '../../broker/planner/index.js';
import { CatalogueView } from '../../broker/services/catalogue-view.js';
import { migrate } from '../../registry/store/migrate.js';
import { publishDocument } from '../../registry/store/publish.js';
import { freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

const search = { visibility: 'all' as const, limit: 10, offset: 0 };
const empty = (version: number) => PlannerSnapshot.of(version, []);

describe('catalogue view marked stale', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
    await publishDocument(db.pool, documentFor('alpha', [{ id: 'survey.one', table: 'local.one' }]), 'publish');
  });
  afterAll(() => db?.close());

  it('stays unanswered through a change of sites\' rows alone, and answers again after a full read', async () => {
    const view = new CatalogueView();
    await view.read(db.pool, undefined);
    view.follow(empty(1), undefined);
    expect(view.version).toBe(1);
    expect(view.search(search)?.map((r) => r.id)).toEqual(['survey.one']);
    // Sites changed that were never read: stale.
    view.follow(empty(2), new Set(['alpha']));
    expect(view.version).toBe(-1);
    expect(view.search(search)).toBeUndefined();
    // Only sites' own rows moved since: still stale (it was marked current here before).
    view.follow(empty(3), new Set());
    expect(view.version).toBe(-1);
    expect(view.search(search)).toBeUndefined();
    // The next read of one site reads everything, and the view answers again.
    await view.read(db.pool, ['alpha']);
    view.follow(empty(4), new Set(['alpha']));
    expect(view.version).toBe(4);
    expect(view.search(search)?.map((r) => r.id)).toEqual(['survey.one']);
  });
});
