/**
 * The in-memory sky-coverage index of every replica, for region searches. It reads nothing
 * itself: it follows the planner's snapshot (PlannerView), built from one read of the registry
 * per change, so the two never disagree on the registry version and each MOC is parsed once.
 */
import { CoverageIndex } from '../../registry/coverage/index.js';
import type { SMoc } from '../../registry/coverage/moc.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import type { PlannerSnapshot, SnapshotFollower } from '../planner/index.js';

/** Key of one replica in the index: site and canonical dataset, stable across publishes. */
type ReplicaKey = string;
const keyOf = (siteId: string, datasetId: string): ReplicaKey => `${siteId}\u0000${datasetId}`;
const datasetOf = (key: ReplicaKey): string => key.slice(key.indexOf('\u0000') + 1);

/** Answers "which replicas' coverage touches this region" without scanning SQL per request. */
export class CoverageView implements SnapshotFollower {
  private readonly index = new CoverageIndex<ReplicaKey>();
  private readonly keysBySite = new Map<string, ReplicaKey[]>();
  /** The groups of each replica that is not public (a public replica is absent). */
  private readonly restricted = new Map<ReplicaKey, readonly string[]>();
  private version_ = -1;

  /** The registry version this view reflects (-1 before the planner's first load). */
  get version(): number {
    return this.version_;
  }

  /**
   * Take the replicas of the sites that changed (every site when `changed` is undefined) from
   * `snapshot`, sharing its parsed coverage. Synchronous, so a reader never sees a site half replaced.
   */
  follow(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void {
    const siteIds = changed ?? new Set([...this.keysBySite.keys(), ...snapshot.siteIds]);
    for (const id of siteIds) {
      for (const key of this.keysBySite.get(id) ?? []) {
        this.index.delete(key);
        this.restricted.delete(key);
      }
      this.keysBySite.delete(id);
      const site = snapshot.site(id);
      if (!site) continue;
      const keys: ReplicaKey[] = [];
      for (const replica of site.replicas.values()) {
        const key = keyOf(id, replica.row.datasetId);
        this.index.set(key, replica.moc);
        if (!replica.row.access.public) this.restricted.set(key, replica.row.access.groups);
        keys.push(key);
      }
      this.keysBySite.set(id, keys);
    }
    this.version_ = snapshot.version;
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
