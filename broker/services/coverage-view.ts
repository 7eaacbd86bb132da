/** The in-memory sky-coverage index of every replica, kept in step with the registry version. */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { CoverageIndex } from '../../registry/coverage/index.js';
import { INDEX_ORDER } from '../../registry/coverage/limits.js';
import { parseMocAscii, type SMoc } from '../../registry/coverage/moc.js';
import type { Queryable } from '../../registry/store/db.js';
import { coverageBySites } from '../../registry/store/queries/catalogue.js';
import { registryVersion, sitesChangedSince } from '../../registry/store/queries/sites.js';

/** Key of one replica in the index: site and canonical dataset, stable across publishes. */
type ReplicaKey = string;
const keyOf = (siteId: string, datasetId: string): ReplicaKey => `${siteId}\u0000${datasetId}`;
const datasetOf = (key: ReplicaKey): string => key.slice(key.indexOf('\u0000') + 1);

/** Answers "which replicas' coverage touches this region" without scanning SQL per request. */
export class CoverageView {
  private readonly index = new CoverageIndex<ReplicaKey>();
  private readonly keysBySite = new Map<string, ReplicaKey[]>();
  private version_ = -1;
  private chain: Promise<void> = Promise.resolve();

  /** The registry version this view reflects (-1 before the first refresh). */
  get version(): number {
    return this.version_;
  }

  /**
   * Bring the index up to the database's registry version, reloading only sites that changed.
   * Call it with the pool, never from inside a request's read transaction: on the embedded
   * database a waiting transaction would block the reload it waits for.
   */
  async refresh(db: Queryable): Promise<void> {
    // Loads run one after another, so a caller always sees changes committed before its call.
    const next = this.chain.then(() => this.load(db));
    this.chain = next.catch(() => {});
    return next;
  }

  private async load(db: Queryable): Promise<void> {
    const current = await registryVersion(db);
    if (current === this.version_) return;
    const changed = await sitesChangedSince(db, this.version_);
    const siteIds = changed.map((s) => s.id);
    const rows = siteIds.length > 0 ? await coverageBySites(db, siteIds) : [];
    // Indexed at INDEX_ORDER at most (a superset: cone walks stop there). Each distinct MOC is
    // parsed once, giving the event loop back between slices; the index itself changes below in
    // one synchronous step, so a reader never sees a site half replaced.
    const parsed = new Map<string, SMoc>();
    let slice = performance.now();
    for (const row of rows) {
      if (row.moc === null || parsed.has(row.moc)) continue;
      parsed.set(row.moc, parseMocAscii(row.moc).degrade(INDEX_ORDER));
      if (performance.now() - slice > 15) {
        await yieldToLoop();
        slice = performance.now();
      }
    }
    for (const id of siteIds) {
      for (const key of this.keysBySite.get(id) ?? []) {
        this.index.delete(key);
      }
      this.keysBySite.set(id, []);
    }
    for (const row of rows) {
      const key = keyOf(row.siteId, row.datasetId);
      this.index.set(key, row.moc === null ? null : parsed.get(row.moc)!);
      this.keysBySite.get(row.siteId)!.push(key);
    }
    this.version_ = Math.max(current, ...changed.map((s) => s.registryVersion));
  }


  /** Canonical ids of datasets with a replica whose coverage touches the cone. */
  datasetsInCone(ra: number, dec: number, radiusDeg: number): Set<string> {
    return new Set(this.index.queryCone(ra, dec, radiusDeg).map(datasetOf));
  }

  /** Canonical ids of datasets with a replica whose coverage intersects `region` (unknown coverage always does). */
  datasetsInMoc(region: SMoc): Set<string> {
    const out = new Set<string>();
    for (const key of this.index.keys()) {
      const moc = this.index.get(key);
      if (moc === null || moc?.intersects(region)) out.add(datasetOf(key));
    }
    return out;
  }
}
