/**
 * The registry's one in-memory view: the planner's snapshot kept in step with the registry
 * version, and the followers (coverage index, catalogue) handed each new snapshot with it.
 */
import type pg from 'pg';
import { withTransaction, type Queryable } from '../../registry/store/db.js';
import type { PublishedSite } from '../../registry/store/published-site.js';
import { registryVersion, sitesByIds, sitesChangedSince } from '../../registry/store/queries/sites.js';
import { siteFromPublished } from './published.js';
import { NO_PREFERENCE, PlannerSnapshot, buildSites, loadRows, type PlannerSite, type PreferenceOf } from './snapshot.js';

/** A view kept in step with the planner's snapshots (the sky-coverage index): given each new snapshot as it is made. */
export interface SnapshotFollower {
  /**
   * Optional: read what this follower keeps beyond the snapshot for the sites `changed` (every
   * site when undefined), inside the snapshot's own REPEATABLE READ transaction, so it is at
   * the snapshot's version; `follow` is then called with that snapshot.
   */
  read?(tx: Queryable, changed: readonly string[] | undefined): Promise<void>;
  /**
   * With `read`: what `read` would find for the one site of a publish the view is exactly one
   * version behind, taken from the publish itself. Returns a function that sets it up for the
   * next `follow` (called only when every follower can), or undefined when the follower cannot
   * tell without reading (the view then loads from the database).
   */
  fromPublished?(site: PublishedSite): (() => void) | undefined;
  /** Take the sites that changed in `snapshot` (every site when `changed` is undefined); called synchronously. */
  follow(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void;
}

/**
 * The one in-memory view of the registry, kept in step with the registry version: the first
 * refresh loads everything, later ones reload only sites whose registry_version moved, in one
 * read per change. Plans read `snapshot` synchronously; the followers (the coverage index) are
 * given each new snapshot in the same synchronous step, so every view is at one version.
 */
export class PlannerView {
  private current: PlannerSnapshot | undefined;
  /**
   * The last snapshot built (metrics): how long reading and building it took (readMs of it in
   * the database transaction), when it was made current, and whether it was a full load.
   */
  lastBuild: { durationMs: number; readMs: number; at: Date; full: boolean; fromPublish?: boolean } | undefined;
  /** The last load started (settled quietly: a failed load does not stop the next). */
  private running: Promise<void> = Promise.resolve();
  /** The load that starts when `running` ends, shared by every caller arriving meanwhile. */
  private queued: Promise<void> | undefined;
  /** True while a load runs (a publish is then not taken from its document). */
  private loading = false;
  /** The highest registry version a caller said is committed (see `refresh`). */
  private known = -1;
  private readonly followers: readonly SnapshotFollower[];

  constructor(private readonly preference: PreferenceOf = NO_PREFERENCE, ...followers: SnapshotFollower[]) {
    this.followers = followers;
  }

  /** The latest snapshot; throws before the first refresh. */
  get snapshot(): PlannerSnapshot {
    if (!this.current) throw new Error('PlannerView has not been refreshed yet');
    return this.current;
  }

  /** The registry version reflected (-1 before the first refresh). */
  get version(): number {
    return this.current?.version ?? -1;
  }

  /**
   * Bring the snapshot (and its followers) up to the database's registry version: resolves
   * after a load that started after this call, so it sees every change committed before it.
   * Callers arriving while a load runs share the next one (concurrent publishes make one
   * refresh, not one each); that load uses the pool of the first of them. `committed`, when
   * given, is a registry version the caller knows is committed (its own publish's): a load
   * behind it skips asking the database whether anything changed. Call with the pool, never
   * from inside a request transaction: on the embedded database a waiting transaction would
   * block it.
   */
  async refresh(pool: pg.Pool, committed?: number): Promise<PlannerSnapshot> {
    if (committed !== undefined && committed > this.known) this.known = committed;
    let queued = this.queued;
    if (queued === undefined) {
      queued = this.running.then(() => {
        // From here on a new caller may have committed after this load's reads: it queues anew.
        this.queued = undefined;
        this.loading = true;
        const load = this.load(pool);
        const settled = () => {
          this.loading = false;
        };
        this.running = load.then(settled, settled);
        return load;
      });
      this.queued = queued;
    }
    await queued;
    return this.snapshot;
  }

  /**
   * Bring the view up to a publish this process just committed: when the view is exactly one
   * registry version behind it and no load is under way, from the publish itself (its document's
   * rows, replica ids and site row: nothing is read back, and the result equals a load); on any
   * doubt (a version between, another broker's publish, a load running, a follower that cannot
   * tell) by {@link refresh} with the publish's version.
   */
  async published(pool: pg.Pool, site: PublishedSite): Promise<PlannerSnapshot> {
    const prev = this.current;
    if (prev !== undefined && prev.version >= site.registryVersion) return prev;
    if (prev !== undefined && prev.version === site.registryVersion - 1 && !this.loading && this.queued === undefined && this.advance(prev, site)) {
      return this.snapshot;
    }
    return this.refresh(pool, site.registryVersion);
  }

  /** Take `site`'s publish into `prev`, the current snapshot one version behind it, synchronously; false (nothing changed) when a follower cannot. */
  private advance(prev: PlannerSnapshot, site: PublishedSite): boolean {
    const started = performance.now();
    const siteId = site.row.id;
    const had = prev.site(siteId);
    let next: PlannerSite;
    const reloaded = new Set<string>();
    if (had !== undefined && !site.rowsChanged) {
      // Its own row alone changed: as a load does, the site takes its row and the followers keep what they hold.
      next = had.withRow(site.row);
    } else {
      const takes: (() => void)[] = [];
      for (const f of this.followers) {
        if (f.read === undefined) continue;
        const take = f.fromPublished?.(site);
        if (take === undefined) return false;
        takes.push(take);
      }
      next = siteFromPublished(site, this.preference(siteId), had);
      for (const take of takes) take();
      reloaded.add(siteId);
    }
    this.publish(PlannerSnapshot.advance(prev, site.registryVersion, new Set([siteId]), [next]), reloaded);
    this.lastBuild = { durationMs: performance.now() - started, readMs: 0, at: new Date(), full: false, fromPublish: true };
    return true;
  }

  private async load(pool: pg.Pool): Promise<void> {
    const prev = this.current;
    const started = performance.now();
    // Rows are read in one REPEATABLE READ transaction (the changed sites and the version come
    // from one cut); MOCs are parsed after it ends, so no transaction stays open meanwhile.
    if (prev === undefined) {
      const cut = await withTransaction(pool, async (c) => {
        const read = { version: await registryVersion(c), rows: await loadRows(c, undefined) };
        await this.readFollowers(c, undefined);
        return read;
      }, { isolation: 'REPEATABLE READ', readOnly: true });
      const readMs = performance.now() - started;
      this.publish(PlannerSnapshot.of(cut.version, await buildSites(cut.rows, this.preference)), undefined);
      this.lastBuild = { durationMs: performance.now() - started, readMs, at: new Date(), full: true };
      return;
    }
    // Nothing to load when the version has not moved (unless a caller already said it has).
    if (this.known <= prev.version && (await registryVersion(pool)) === prev.version) return;
    const cut = await withTransaction(pool, async (c) => {
      const version = await registryVersion(c);
      const changes = await sitesChangedSince(c, prev.version);
      // A site whose advertised rows did not move since `prev` (a republish that wrote none, a
      // health change) takes its new row and keeps its replicas: the followers need not hear of it.
      const reload: string[] = [];
      const rowOnly: PlannerSite[] = [];
      for (const s of changes) {
        const had = prev.site(s.id);
        if (had !== undefined && s.rowsVersion <= prev.version) rowOnly.push(had);
        else reload.push(s.id);
      }
      const rows = reload.length === 0 ? [] : await loadRows(c, reload);
      const siteRows = rowOnly.length === 0 ? [] : await sitesByIds(c, rowOnly.map((s) => s.site.id));
      if (reload.length > 0) await this.readFollowers(c, reload);
      return { version, changed: new Set(changes.map((s) => s.id)), reloaded: new Set(reload), rows, rowOnly, siteRows };
    }, { isolation: 'REPEATABLE READ', readOnly: true });
    const readMs = performance.now() - started;
    const sites = await buildSites(cut.rows, this.preference, prev);
    const siteRows = new Map(cut.siteRows.map((row) => [row.id, row]));
    for (const had of cut.rowOnly) {
      const row = siteRows.get(had.site.id);
      if (row !== undefined) sites.push(had.withRow(row));
    }
    this.publish(PlannerSnapshot.advance(prev, cut.version, cut.changed, sites), cut.reloaded);
    this.lastBuild = { durationMs: performance.now() - started, readMs, at: new Date(), full: false };
  }

  /** Let the followers that read rows of their own read them in the snapshot's transaction. */
  private async readFollowers(tx: Queryable, changed: readonly string[] | undefined): Promise<void> {
    for (const f of this.followers) await f.read?.(tx, changed);
  }

  /**
   * Make `snapshot` current and hand it to the followers, in one synchronous step. `changed`: the
   * sites whose rows were reloaded (a site whose own row alone changed shares its replicas' columns).
   */
  private publish(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void {
    this.current = snapshot;
    for (const f of this.followers) f.follow(snapshot, changed);
  }
}
