/**
 * The in-memory sky-coverage index of every replica, for region searches. It reads nothing
 * itself: it follows the planner's snapshot (PlannerView), built from one read of the registry
 * per change, so the two never disagree on the registry version, and it files the snapshot's own
 * packed coverage (no copy, no MOC parsed twice): per replica it keeps an id in a PackedSkyIndex.
 */
import { Cone } from '../../registry/coverage/cone.js';
import type { SMoc } from '../../registry/coverage/moc.js';
import { PackedSkyIndex } from '../../registry/coverage/packed-index.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import type { PlannerSite, PlannerSnapshot, SnapshotFollower } from '../planner/index.js';

/** Answers "which replicas' coverage touches this region" without scanning SQL per request. */
export class CoverageView implements SnapshotFollower {
  private readonly index = new PackedSkyIndex();
  /** Per site held: the site as filed and the index id of each of its replicas (replica i → ids[i]). */
  private readonly filed = new Map<string, { site: PlannerSite; ids: Int32Array }>();
  /** Per index id: the site and replica number it stands for. */
  private sites: (PlannerSite | undefined)[] = [];
  private replicas = new Int32Array(1024);
  private readonly hits: number[] = [];
  private version_ = -1;

  /** The registry version this view reflects (-1 before the planner's first load). */
  get version(): number {
    return this.version_;
  }

  /**
   * Take the replicas of the sites that changed (every site when `changed` is undefined) from
   * `snapshot`, sharing its packed coverage. Synchronous, so a reader never sees a site half replaced.
   */
  follow(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void {
    const siteIds = changed ?? new Set([...this.filed.keys(), ...snapshot.siteIds]);
    for (const id of siteIds) {
      const site = snapshot.site(id);
      const had = this.filed.get(id);
      // A site whose replicas' columns are the ones filed is unchanged here (its own row may have moved).
      if (had !== undefined && had.site.columns === site?.columns) continue;
      this.filed.delete(id);
      const ids = site === undefined ? new Int32Array(0) : new Int32Array(site.count);
      // A replica of the same dataset with the same coverage keeps its entry (a harvest's
      // republish changes a coverage or two of a hundred); the others are removed and filed anew.
      const kept = new Uint8Array(had?.ids.length ?? 0);
      if (site !== undefined && had !== undefined) {
        const coverage = site.columns.coverage;
        for (let i = 0; i < site.count; i++) {
          const j = had.site.find(site.columns.datasets[i]);
          if (j < 0 || !this.index.rebind(had.ids[j], coverage, i)) {
            ids[i] = -1;
            continue;
          }
          kept[j] = 1;
          ids[i] = had.ids[j];
          this.remember(ids[i], site, i);
        }
      }
      if (had !== undefined) {
        had.ids.forEach((key, j) => {
          if (kept[j] === 1) return;
          this.index.remove(key);
          this.sites[key] = undefined;
        });
      }
      if (site === undefined) continue;
      const coverage = site.columns.coverage;
      for (let i = 0; i < site.count; i++) {
        if (had !== undefined && ids[i] !== -1) continue;
        const key = this.index.add(coverage, i);
        ids[i] = key;
        this.remember(key, site, i);
      }
      this.filed.set(id, { site, ids });
    }
    this.version_ = snapshot.version;
  }

  private remember(key: number, site: PlannerSite, i: number): void {
    if (key >= this.replicas.length) {
      const grown = new Int32Array(Math.max(2 * this.replicas.length, key + 1));
      grown.set(this.replicas);
      this.replicas = grown;
    }
    this.sites[key] = site;
    this.replicas[key] = i;
  }

  /** Canonical ids of datasets with a replica `visibility` allows whose coverage touches the cone. */
  datasetsInCone(ra: number, dec: number, radiusDeg: number, visibility: ReplicaVisibility = 'all'): Set<string> {
    return this.datasetsTouching(new Cone(ra, dec, radiusDeg), visibility);
  }

  /** {@link datasetsInCone} for a cone built by the caller. */
  datasetsTouching(cone: Cone, visibility: ReplicaVisibility = 'all'): Set<string> {
    const out = new Set<string>();
    for (const key of this.index.queryCone(cone, this.hits)) {
      const site = this.sites[key];
      const i = this.replicas[key];
      if (site !== undefined && this.visible(site, i, visibility)) out.add(site.columns.datasets[i]);
    }
    this.hits.length = 0;
    return out;
  }

  /**
   * Canonical ids of datasets with a replica `visibility` allows whose coverage intersects
   * `region` (unknown coverage always does), through the sky index: only the replicas filed in
   * cells the region touches are tested.
   */
  datasetsInMoc(region: SMoc, visibility: ReplicaVisibility = 'all'): Set<string> {
    const out = new Set<string>();
    for (const key of this.index.queryMoc(region.lookup(), this.hits)) {
      const site = this.sites[key];
      const i = this.replicas[key];
      if (site !== undefined && this.visible(site, i, visibility)) out.add(site.columns.datasets[i]);
    }
    this.hits.length = 0;
    return out;
  }

  /** Whether a reader with `visibility` may see the replica (discovery SQL checks again; this only keeps pages full). */
  private visible(site: PlannerSite, i: number, visibility: ReplicaVisibility): boolean {
    if (visibility === 'all') return true;
    const access = site.columns.access[i];
    return access.public || access.groups.some((g) => visibility.includes(g));
  }
}
