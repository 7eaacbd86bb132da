/** The in-memory sky-coverage index of every replica, kept in step with the registry version. */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { CoverageIndex } from '../../registry/coverage/index.js';
import { INDEX_ORDER } from '../../registry/coverage/limits.js';
import { parseMocAscii, type SMoc } from '../../registry/coverage/moc.js';
import type { Queryable } from '../../registry/store/db.js';
import { coverageBySites, type ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import { registryVersion, sitesChangedSince } from '../../registry/store/queries/sites.js';

/** Key of one replica in the index: site and canonical dataset, stable across publishes. */
type ReplicaKey = string;
const keyOf = (siteId: string, datasetId: string): ReplicaKey => `${siteId}\u0000${datasetId}`;
const datasetOf = (key: ReplicaKey): string => key.slice(key.indexOf('\u0000') + 1);

/** Answers "which replicas' coverage touches this region" without scanning SQL per request. */
export class CoverageView {
  private readonly index = new CoverageIndex<ReplicaKey>();
  private readonly keysBySite = new Map<string, ReplicaKey[]>();
  /** The groups of each replica that is not public (a public replica is absent). */
  private readonly restricted = new Map<ReplicaKey, readonly string[]>();
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
        this.restricted.delete(key);
      }
      this.keysBySite.set(id, []);
    }
    for (const row of rows) {
      const key = keyOf(row.siteId, row.datasetId);
      this.index.set(key, row.moc === null ? null : parsed.get(row.moc)!);
      if (row.groups !== null) this.restricted.set(key, row.groups);
      this.keysBySite.get(row.siteId)!.push(key);
    }
    this.version_ = Math.max(current, ...changed.map((s) => s.registryVersion));
  }


  /** Canonical ids of datasets with a replica `visibility` allows whose coverage touches the cone. */
  datasetsInCone(ra: number, dec: number, radiusDeg: number, visibility: ReplicaVisibility = 'all'): Set<string> {
    const out = new Set<string>();
    for (const key of this.index.queryCone(ra, dec, radiusDeg)) if (this.visible(key, visibility)) out.add(datasetOf(key));
    return out;
  }

  /** Canonical ids of datasets with a replica `visibility` allows whose coverage intersects `region` (unknown coverage always does). */
  datasetsInMoc(region: SMoc, visibility: ReplicaVisibility = 'all'): Set<string> {
    const out = new Set<string>();
    for (const key of this.index.keys()) {
      const moc = this.index.get(key);
      if ((moc === null || moc?.intersects(region)) && this.visible(key, visibility)) out.add(datasetOf(key));
    }
    return out;
  }

  /** Whether a reader with `visibility` may see the replica (discovery SQL checks again; this only keeps pages full). */
  private visible(key: ReplicaKey, visibility: ReplicaVisibility): boolean {
    if (visibility === 'all') return true;
    const groups = this.restricted.get(key);
    return groups === undefined || groups.some((g) => visibility.includes(g));
  }
}
