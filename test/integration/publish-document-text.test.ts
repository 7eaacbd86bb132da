/**
 * A site's document history is stored as the text it was published as (migration 016): read
 * back whole it is the document (its keys in their order), listed with the size of that text;
 * a row written before the migration (jsonb) still reads back; a row holds exactly one body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../registry/store/migrate.js';
import { publishDocument } from '../../registry/store/publish.js';
import { documentById, documentsBySite } from '../../registry/store/queries/history.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { documentFor } from '../support/documents.js';

describe(`the document history keeps each document as its text (${backend})`, () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await freshDatabase();
    await migrate(db.pool);
  });
  afterAll(() => db?.close());

  it('reads back the published document, its keys in order, sized as its text', async () => {
    const doc = documentFor('text', [{ id: 'text.a', table: 'text.a', title: 'Ä title', coverage: '2/1-4' }], { asOf: '2026-12-01T00:00:00Z' });
    const { documentId } = await publishDocument(db.pool, doc, 'publish');
    const back = await documentById(db.pool, documentId);
    expect(back).toEqual(doc);
    expect(JSON.stringify(back)).toBe(JSON.stringify(doc));
    const [listed] = await documentsBySite(db.pool, 'text', 1);
    expect(listed.id).toBe(documentId);
    expect(listed.bytes).toBe(Buffer.byteLength(JSON.stringify(doc)));
    const stored = await db.pool.query<{ document: unknown; body: string | null }>('SELECT document, body FROM site_documents WHERE id = $1', [documentId]);
    expect(stored.rows[0].document).toBeNull();
    expect(stored.rows[0].body).toBe(JSON.stringify(doc));
  });

  it('still reads a document stored as jsonb before the migration, and refuses a row with no body or two', async () => {
    const doc = documentFor('legacy', [{ id: 'legacy.a', table: 'legacy.a' }]);
    await publishDocument(db.pool, doc, 'publish');
    const legacy = await db.pool.query<{ id: number }>(
      `INSERT INTO site_documents (site_id, origin, digest, document) VALUES ('legacy', 'publish', 'd', $1::jsonb) RETURNING id`, [JSON.stringify(doc)]);
    const id = legacy.rows[0].id;
    expect(await documentById(db.pool, id)).toEqual(doc);
    const [listed] = await documentsBySite(db.pool, 'legacy', 1);
    expect(listed.id).toBe(id);
    expect(listed.bytes).toBeGreaterThan(0);
    await expect(db.pool.query(`INSERT INTO site_documents (site_id, origin, digest) VALUES ('legacy', 'publish', 'd')`)).rejects.toThrow(/site_documents_one_body/);
    await expect(db.pool.query(`INSERT INTO site_documents (site_id, origin, digest, document, body) VALUES ('legacy', 'publish', 'd', '{}', '{}')`))
      .rejects.toThrow(/site_documents_one_body/);
    expect(await documentById(db.pool, id + 1000)).toBeUndefined();
  });
});
