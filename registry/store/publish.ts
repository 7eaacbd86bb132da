/** Replacing one site's advertised state with a validated document, in one transaction. */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { CapabilityDocument } from '../model/capability.js';
import { parseMocAscii } from '../coverage/moc.js';
import { withTransaction, type Queryable } from './db.js';
import type { PublishedSite } from './published-site.js';
import type { SiteRow } from './queries/rows.js';
import { SITE_COLUMNS } from './queries/sites.js';
import { changedRows, diffSite } from './site-diff.js';
import { documentState, emptyState, readSiteState } from './site-state.js';
import { applySiteChanges } from './site-writes.js';

export type DocumentOrigin = 'seed' | 'harvest' | 'publish';

/** How many earlier documents of each site are kept for operators to compare. */
export const DOCUMENT_HISTORY = 20;

export interface PublishResult {
  siteId: string;
  registryVersion: number;
  documentId: number;
  replicas: number;
  /** Rows of the site's services, replicas, columns, coverage, compute and images written and deleted (cascades aside): 0 and 0 when nothing changed. */
  rowsWritten: { upserted: number; deleted: number };
}

/**
 * Store `doc` (already validated) as the whole advertised state of its site: services,
 * replicas, columns, coverage, compute and images become the document's in one transaction, so
 * a reader sees either the old state or the new one, never a mix. Only rows that differ from
 * the stored ones are written; an unchanged replica keeps its row and its id. `stored`: sky
 * fractions already known by normal MOC text (the site's stored coverage, and those validation
 * computed), which are not computed again.
 */
export async function publishDocument(pool: pg.Pool, doc: CapabilityDocument, origin: DocumentOrigin, stored?: StoredCoverage): Promise<PublishResult> {
  return (await publishSite(pool, doc, origin, stored)).result;
}

/**
 * {@link publishDocument}, also giving what the site now is as the in-memory registry view holds
 * it (published-site.ts), so a view one version behind can take the publish without reading it back.
 */
export async function publishSite(pool: pg.Pool, doc: CapabilityDocument, origin: DocumentOrigin, stored?: StoredCoverage): Promise<{ result: PublishResult; site: PublishedSite }> {
  const siteId = doc.site.id;
  const json = JSON.stringify(doc);
  const digest = createHash('sha256').update(json).digest('hex');
  const target = documentState(doc);
  const fractions = await skyFractions(stored ?? (await storedCoverage(pool, siteId)), doc);

  return withTransaction(pool, async (c) => {
    // The upsert locks the site's row until commit: publishers of one site go one at a time (and
    // each compares against what the previous one committed); other sites publish concurrently.
    const site = await c.query<{ created: boolean }>(
      `INSERT INTO sites (id, name, platform, url, location_lat, location_lon, contact, origin, as_of, published_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, platform = EXCLUDED.platform,
         url = COALESCE(EXCLUDED.url, sites.url), location_lat = COALESCE(EXCLUDED.location_lat, sites.location_lat),
         location_lon = COALESCE(EXCLUDED.location_lon, sites.location_lon), contact = EXCLUDED.contact,
         origin = EXCLUDED.origin, as_of = EXCLUDED.as_of, published_at = now()
       RETURNING (xmax = 0) AS created`,
      [siteId, doc.site.name, doc.site.platform, doc.site.url ?? null, doc.site.location?.lat ?? null, doc.site.location?.lon ?? null,
        doc.site.contact ?? null, origin, doc.asOf],
    );
    // A site just inserted (xmax = 0: the upsert took its insert path) has nothing stored to read.
    const stored = site.rows[0].created ? emptyState() : await readSiteState(c, siteId);
    const changes = diffSite(stored, target);
    const applied = await applySiteChanges(c, siteId, changes, stored, (moc) => fractions.get(moc) ?? parseMocAscii(moc).skyFraction());

    // Every publish is a new registry version: the site's asOf, publishedAt and document history
    // changed even when its rows did not, and cached answers show them.
    // rows_version moves only when a row of the site's own tables did (the view then reloads them).
    const rowsWritten = changedRows(changes);
    const rowsChanged = site.rows[0].created || rowsWritten.upserted + rowsWritten.deleted > 0;
    // One statement, one round trip, at the end (the site's row is locked by then): the document
    // joins the site's history (stored as text, migration 016: it is only ever read whole), all but
    // the newest DOCUMENT_HISTORY pruned (the DELETE reads the history as it was before this
    // INSERT, so it keeps DOCUMENT_HISTORY - 1 and the new one makes DOCUMENT_HISTORY); the
    // version moves; the site's row comes back as readers will read it (published_at is the
    // server's), with the id before it in the database's order of sites (the catalogue's order,
    // for a site new to it).
    const version = await c.query<SiteRow & { version: number; documentId: number; notified: unknown; before: string | null }>(
      `WITH added AS (INSERT INTO site_documents (site_id, origin, digest, as_of, body) VALUES ($1, $3, $4, $5, $6) RETURNING id),
            pruned AS (DELETE FROM site_documents WHERE id IN (SELECT id FROM site_documents WHERE site_id = $1 ORDER BY id DESC OFFSET $7)),
            v AS (UPDATE registry_state SET version = version + 1 RETURNING version),
            s AS (UPDATE sites SET registry_version = v.version, rows_version = CASE WHEN $2 THEN v.version ELSE sites.rows_version END FROM v WHERE id = $1
                  RETURNING sites.*)
       SELECT v.version, added.id AS "documentId", pg_notify('constellation_registry', v.version::text) AS notified,
         (SELECT max(id) FROM sites WHERE id < $1) AS before, row.*
       FROM v, added, (SELECT ${SITE_COLUMNS} FROM s) row`,
      [siteId, rowsChanged, origin, digest, doc.asOf, json, DOCUMENT_HISTORY - 1],
    );
    const { version: registryVersion, documentId, notified: _notified, before, ...row } = version.rows[0];
    const replicaIds = new Map<string, number>();
    for (const datasetId of target.replicas.keys()) {
      const id = applied.replicaIds.get(datasetId);
      // Every replica of the document is stored or was just written; anything else is a bug here.
      if (id === undefined) throw new Error(`publish: no replica of "${datasetId}" at site "${siteId}"`);
      replicaIds.set(datasetId, id);
    }
    return {
      result: { siteId, registryVersion, documentId, replicas: target.replicas.size, rowsWritten },
      site: { registryVersion, row, before, rowsChanged, state: target, replicaIds, datasets: { written: applied.datasetsWritten, deleted: applied.datasetsDeleted } },
    };
  });
}

/** A site's stored coverage: each distinct MOC text (normal form, as validation left it) with its sky fraction. */
export type StoredCoverage = ReadonlyMap<string, number>;

/**
 * The coverage `siteId` stores now, read outside any transaction: a publisher reads it once,
 * lets validation skip the texts it holds (they were validated when stored) and hands it to
 * {@link publishDocument}. Possibly stale by the transaction: it only saves work, never decides.
 */
export async function storedCoverage(db: Queryable, siteId: string): Promise<StoredCoverage> {
  const stored = await db.query<{ moc: string; fraction: number }>(
    `SELECT c.moc, c.sky_fraction AS fraction FROM replicas r JOIN coverage c ON c.replica_id = r.id WHERE r.site_id = $1`, [siteId]);
  return new Map(stored.rows.map((r) => [r.moc, r.fraction]));
}

/**
 * The sky fraction of each distinct MOC of `doc`, computed before the transaction so no lock
 * is held meanwhile, giving the event loop back between MOCs (a document may hold thousands).
 * A MOC the site already stores keeps its stored fraction: a harvest that changes one coverage
 * parses one MOC; one whose fraction validation computed is not parsed at all. (Should the site's coverage change before the transaction, the few MOCs this
 * misses are computed there.)
 */
async function skyFractions(stored: StoredCoverage, doc: CapabilityDocument): Promise<Map<string, number>> {
  const fractions = new Map(stored);
  let slice = performance.now();
  for (const d of doc.datasets) {
    // The document is validated, so its coverage is already in normal form.
    if (d.coverage === undefined || fractions.has(d.coverage)) continue;
    fractions.set(d.coverage, parseMocAscii(d.coverage).skyFraction());
    if (performance.now() - slice > 15) {
      await yieldToLoop();
      slice = performance.now();
    }
  }
  return fractions;
}
