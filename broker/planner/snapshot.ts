/**
 * An immutable in-memory view of what planning needs, so a plan is a pure synchronous walk with
 * no SQL. Per-site facts are frozen objects shared between generations: a reload after a publish
 * rebuilds only the sites that changed and the coverage indexes of the datasets they touch.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type pg from 'pg';
import { CoverageIndex } from '../../registry/coverage/index.js';
import { INDEX_ORDER } from '../../registry/coverage/limits.js';
import { parseMocAscii, type SMoc } from '../../registry/coverage/moc.js';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { withTransaction, type Queryable } from '../../registry/store/db.js';
import { coverageBySites, replicasBySites } from '../../registry/store/queries/catalogue.js';
import { computeBySites, imagesBySites, servicesBySites } from '../../registry/store/queries/resources.js';
import type { ComputeRow, ImageRow, ReplicaRow, ServiceRow, SiteRow, SiteStatus } from '../../registry/store/queries/rows.js';
import { listSites, registryVersion, sitesByIds, sitesChangedSince } from '../../registry/store/queries/sites.js';
import { reachOf, type Reach } from './reach.js';

/**
 * Datasets with at least this many replicas get a coverage index of their own. Below it, testing
 * each replica's bounding cap and then its MOC is faster (per cone: 2.4 µs against 12 µs at 20
 * replicas; the two meet near 300), and small indexes cost about 6 kB of heap per replica: in the
 * planner bench (5,000 datasets of 20 replicas) they grew the heap from 0.28 to 1 GB, and every
 * young-generation pause grows with the heap.
 */
export const INDEX_MIN_REPLICAS = 256;

/** One replica with its parsed coverage (null = unknown, treated as the whole sky). */
export interface PlannerReplica {
  readonly row: ReplicaRow;
  readonly moc: SMoc | null;
  /** A cap holding `moc`, to rule out far cones at once (null: test the MOC itself). */
  readonly reach: Reach | null;
}

/** Everything the planner knows about one site. */
export interface PlannerSite {
  readonly site: SiteRow;
  /** Multiplier from federation.yaml (default 1). */
  readonly preference: number;
  readonly services: ReadonlyMap<string, ServiceRow>;
  readonly replicas: ReadonlyMap<string, PlannerReplica>;
  /** Compute pools ordered by id. */
  readonly pools: readonly ComputeRow[];
  readonly images: readonly ImageRow[];
}

/** Rows of one site as loaded from the database or derived from a document. */
interface SiteRows {
  site: SiteRow;
  services: ServiceRow[];
  replicas: ReplicaRow[];
  coverage: Map<string, string | null>;
  pools: ComputeRow[];
  images: ImageRow[];
}

/** How sites' preferences are looked up (federation.yaml `preference`). */
export type PreferenceOf = (siteId: string) => number;
const NO_PREFERENCE: PreferenceOf = () => 1;

/** Immutable planning state at one registry version. */
export class PlannerSnapshot {
  /** Sites ordered by id. */
  readonly sites: readonly PlannerSite[];
  /**
   * The id of each site and whether it is DOWN, in `sites` order. A plan passes over every site,
   * and most hold none of the requested data: these dense arrays spare it a visit to each site.
   */
  readonly siteIds: readonly string[];
  readonly siteDown: readonly boolean[];
  private readonly positions: ReadonlyMap<string, number>;

  private constructor(
    readonly version: number,
    private readonly bySite: ReadonlyMap<string, PlannerSite>,
    private readonly byDataset: ReadonlyMap<string, readonly PlannerReplica[]>,
    private readonly indexes: ReadonlyMap<string, CoverageIndex<string>>,
  ) {
    this.sites = [...bySite.values()].sort((a, b) => cmp(a.site.id, b.site.id));
    this.siteIds = this.sites.map((s) => s.site.id);
    this.siteDown = this.sites.map((s) => s.site.status === 'DOWN');
    this.positions = new Map(this.siteIds.map((id, i) => [id, i]));
  }

  /** A snapshot from whole site facts, building dataset lists and coverage indexes afresh. */
  static of(version: number, sites: Iterable<PlannerSite>): PlannerSnapshot {
    const bySite = new Map<string, PlannerSite>();
    for (const s of sites) bySite.set(s.site.id, s);
    const byDataset = new Map<string, PlannerReplica[]>();
    for (const s of bySite.values()) for (const r of s.replicas.values()) push(byDataset, r.row.datasetId, r);
    const indexes = new Map<string, CoverageIndex<string>>();
    for (const [dataset, list] of byDataset) {
      list.sort((a, b) => cmp(a.row.siteId, b.row.siteId));
      if (list.length >= INDEX_MIN_REPLICAS) indexes.set(dataset, indexOf(list));
    }
    return new PlannerSnapshot(version, bySite, byDataset, indexes);
  }

  /** The next generation: `changed` sites replaced (absent from `next` = removed), the rest shared. */
  private withSites(version: number, changed: ReadonlySet<string>, next: readonly PlannerSite[]): PlannerSnapshot {
    const bySite = new Map(this.bySite);
    const touched = new Set<string>();
    for (const id of changed) {
      for (const d of this.bySite.get(id)?.replicas.keys() ?? []) touched.add(d);
      bySite.delete(id);
    }
    for (const s of next) {
      bySite.set(s.site.id, s);
      for (const d of s.replicas.keys()) touched.add(d);
    }
    const byDataset = new Map(this.byDataset);
    const indexes = new Map(this.indexes);
    for (const dataset of touched) {
      const list: PlannerReplica[] = (this.byDataset.get(dataset) ?? []).filter((r) => !changed.has(r.row.siteId));
      for (const s of next) {
        const r = s.replicas.get(dataset);
        if (r) list.push(r);
      }
      list.sort((a, b) => cmp(a.row.siteId, b.row.siteId));
      if (list.length === 0) byDataset.delete(dataset);
      else byDataset.set(dataset, list);
      // Copy-on-write: an older snapshot still planning keeps its own index untouched.
      if (list.length >= INDEX_MIN_REPLICAS) indexes.set(dataset, indexOf(list));
      else indexes.delete(dataset);
    }
    return new PlannerSnapshot(version, bySite, byDataset, indexes);
  }

  /** Apply a reload of some sites (used by PlannerView). */
  static advance(prev: PlannerSnapshot, version: number, changed: ReadonlySet<string>, next: readonly PlannerSite[]): PlannerSnapshot {
    return prev.withSites(version, changed, next);
  }

  /** A site's facts, or undefined. */
  site(id: string): PlannerSite | undefined {
    return this.bySite.get(id);
  }

  /** Where a site is in `sites`, or -1. */
  positionOf(id: string): number {
    return this.positions.get(id) ?? -1;
  }

  /** Replicas of a dataset ordered by site id (empty when none). */
  replicasOf(dataset: string): readonly PlannerReplica[] {
    return this.byDataset.get(dataset) ?? EMPTY;
  }

  /** The coverage index of a dataset's replicas keyed by site id, when it has enough replicas to warrant one. */
  coverageOf(dataset: string): CoverageIndex<string> | undefined {
    return this.indexes.get(dataset);
  }

  /** Number of replicas held. */
  get replicaCount(): number {
    let n = 0;
    for (const list of this.byDataset.values()) n += list.length;
    return n;
  }
}

const EMPTY: readonly PlannerReplica[] = Object.freeze([]);

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function indexOf(list: readonly PlannerReplica[]): CoverageIndex<string> {
  const index = new CoverageIndex<string>();
  for (const r of list) index.set(r.row.siteId, r.moc);
  return index;
}

/** A parsed coverage and its cap. */
interface Coverage {
  moc: SMoc | null;
  reach: Reach | null;
}

const UNKNOWN: Coverage = Object.freeze({ moc: null, reach: null });

/**
 * Parse each distinct MOC text once; many replicas of one survey share the same coverage. The
 * planner sees coverage at INDEX_ORDER at most (a superset), so no cone walk goes finer.
 */
class MocCache {
  private readonly seen = new Map<string, Coverage>();
  parse(text: string | null): Coverage {
    if (text === null) return UNKNOWN;
    let coverage = this.seen.get(text);
    if (coverage === undefined) {
      const moc = parseMocAscii(text).degrade(INDEX_ORDER);
      // The cone walks' lookup table is built with the snapshot, not by the first plan to need it.
      moc.lookup();
      coverage = { moc, reach: reachOf(moc) };
      this.seen.set(text, coverage);
    }
    return coverage;
  }

  /** Parse these sites' MOCs ahead of building them, giving the event loop back between slices. */
  async prepare(rows: readonly SiteRows[]): Promise<void> {
    let slice = performance.now();
    for (const r of rows) {
      for (const text of r.coverage.values()) {
        this.parse(text);
        if (performance.now() - slice > 15) {
          await yieldToLoop();
          slice = performance.now();
        }
      }
    }
  }
}

function buildSite(rows: SiteRows, preference: PreferenceOf, mocs: MocCache): PlannerSite {
  const replicas = new Map<string, PlannerReplica>();
  for (const row of rows.replicas) {
    const { moc, reach } = mocs.parse(rows.coverage.get(row.datasetId) ?? null);
    replicas.set(row.datasetId, Object.freeze({ row, moc, reach }));
  }
  return Object.freeze({
    site: rows.site,
    preference: preference(rows.site.id),
    services: new Map(rows.services.map((s) => [s.id, s])),
    replicas,
    pools: [...rows.pools].sort((a, b) => cmp(a.id, b.id)),
    images: rows.images,
  });
}

/** Load the rows of these sites (all sites when `ids` is undefined) with six statements. */
async function loadRows(db: Queryable, ids: readonly string[] | undefined): Promise<SiteRows[]> {
  const sites = ids === undefined ? await listSites(db) : await sitesByIds(db, ids);
  const siteIds = sites.map((s) => s.id);
  const rows = new Map<string, SiteRows>(sites.map((site) => [site.id, { site, services: [], replicas: [], coverage: new Map(), pools: [], images: [] }]));
  const [services, replicas, coverage, pools, images] = [
    await servicesBySites(db, siteIds),
    await replicasBySites(db, siteIds),
    await coverageBySites(db, siteIds),
    await computeBySites(db, siteIds),
    await imagesBySites(db, siteIds),
  ];
  for (const s of services) rows.get(s.siteId)?.services.push(s);
  for (const r of replicas) rows.get(r.siteId)?.replicas.push(r);
  for (const c of coverage) rows.get(c.siteId)?.coverage.set(c.datasetId, c.moc);
  for (const p of pools) rows.get(p.siteId)?.pools.push(p);
  for (const i of images) rows.get(i.siteId)?.images.push(i);
  return [...rows.values()];
}

/** Sites built from their rows, their MOCs parsed in slices first. */
async function buildSites(rows: readonly SiteRows[], preference: PreferenceOf): Promise<PlannerSite[]> {
  const mocs = new MocCache();
  await mocs.prepare(rows);
  return rows.map((r) => buildSite(r, preference, mocs));
}

/** Load a whole snapshot. Give a client inside a REPEATABLE READ transaction for a consistent cut. */
export async function loadPlannerSnapshot(db: Queryable, preference: PreferenceOf = NO_PREFERENCE): Promise<PlannerSnapshot> {
  const version = await registryVersion(db);
  return PlannerSnapshot.of(version, await buildSites(await loadRows(db, undefined), preference));
}

/** Options for building a snapshot straight from capability documents. */
export interface DocumentSnapshotOptions {
  /** Site health; documents carry none, so sites default to UP. */
  status?: Record<string, SiteStatus>;
  preference?: Record<string, number>;
  version?: number;
}

/** A snapshot from capability documents, without a database (unit tests and benches). */
export function snapshotFromDocuments(docs: readonly CapabilityDocument[], options: DocumentSnapshotOptions = {}): PlannerSnapshot {
  const mocs = new MocCache();
  let replicaId = 0;
  const preference: PreferenceOf = (id) => options.preference?.[id] ?? 1;
  return PlannerSnapshot.of(options.version ?? 1, docs.map((doc) => {
    const siteId = doc.site.id;
    const asOf = new Date(doc.asOf);
    const rows: SiteRows = {
      site: {
        id: siteId, name: doc.site.name, platform: doc.site.platform, url: doc.site.url ?? null, location: doc.site.location ?? null,
        contact: doc.site.contact ?? null, status: options.status?.[siteId] ?? 'UP', origin: 'publish', asOf, publishedAt: asOf,
        registryVersion: options.version ?? 1, consecutiveFailures: 0,
      },
      services: doc.services.map((s) => ({
        siteId, id: s.id, type: s.type, url: s.url, standardId: s.standardId ?? null, title: s.title ?? null, upload: s.upload ?? false,
        async: s.async ?? false, maxRec: s.maxRec ?? null, uploadLimitBytes: s.uploadLimitBytes ?? null, languages: s.languages ?? [],
        formats: s.formats ?? [], auth: s.auth ?? [],
      })),
      replicas: doc.datasets.map((d) => ({
        id: ++replicaId, datasetId: d.id, siteId, serviceId: d.service, table: d.table, title: d.title ?? null, description: d.description ?? null,
        rows: d.rows ?? null, rowBytes: d.rowBytes ?? null, position: d.position ?? null,
        access: { public: d.access.public, groups: d.access.groups ?? [] },
      })),
      coverage: new Map(doc.datasets.map((d) => [d.id, d.coverage ?? null])),
      pools: doc.compute.map((c) => ({
        siteId, id: c.id, kind: c.kind, serviceId: c.service ?? null, cores: c.cores, memoryGb: c.memoryGb, gpus: c.gpus ?? 0,
        freeCores: c.freeCores ?? null, freeMemoryGb: c.freeMemoryGb ?? null, queueWaitS: c.queueWaitS ?? null,
        maxWalltimeS: c.maxWalltimeS ?? null, maxCoresPerJob: c.maxCoresPerJob ?? null, maxMemoryGbPerJob: c.maxMemoryGbPerJob ?? null,
      })),
      images: doc.images.map((i) => ({
        siteId, ref: i.ref, digest: i.digest ?? null, arch: i.arch ?? null, types: i.types, software: i.software ?? [], compute: i.compute ?? null,
      })),
    };
    return buildSite(rows, preference, mocs);
  }));
}

/** A view kept in step with the planner's snapshots (the sky-coverage index): given each new snapshot as it is made. */
export interface SnapshotFollower {
  /**
   * Optional: read what this follower keeps beyond the snapshot for the sites `changed` (every
   * site when undefined), inside the snapshot's own REPEATABLE READ transaction, so it is at
   * the snapshot's version; `follow` is then called with that snapshot.
   */
  read?(tx: Queryable, changed: readonly string[] | undefined): Promise<void>;
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
  /** The last snapshot built (metrics): how long reading and building it took, when it was made current, and whether it was a full load. */
  lastBuild: { durationMs: number; at: Date; full: boolean } | undefined;
  private chain: Promise<void> = Promise.resolve();
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
   * Bring the snapshot (and its followers) up to the database's registry version. Call with the
   * pool, never from inside a request transaction: on the embedded database a waiting
   * transaction would block it.
   */
  async refresh(pool: pg.Pool): Promise<PlannerSnapshot> {
    // Serialised so a caller always sees changes committed before its call.
    const next = this.chain.then(() => this.load(pool));
    this.chain = next.catch(() => {});
    await next;
    return this.snapshot;
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
      this.publish(PlannerSnapshot.of(cut.version, await buildSites(cut.rows, this.preference)), undefined);
      this.lastBuild = { durationMs: performance.now() - started, at: new Date(), full: true };
      return;
    }
    if ((await registryVersion(pool)) === prev.version) return;
    const cut = await withTransaction(pool, async (c) => {
      const version = await registryVersion(c);
      const changed = new Set((await sitesChangedSince(c, prev.version)).map((s) => s.id));
      const rows = changed.size === 0 ? [] : await loadRows(c, [...changed]);
      if (changed.size > 0) await this.readFollowers(c, [...changed]);
      return { version, changed, rows };
    }, { isolation: 'REPEATABLE READ', readOnly: true });
    this.publish(PlannerSnapshot.advance(prev, cut.version, cut.changed, await buildSites(cut.rows, this.preference)), cut.changed);
    this.lastBuild = { durationMs: performance.now() - started, at: new Date(), full: false };
  }

  /** Let the followers that read rows of their own read them in the snapshot's transaction. */
  private async readFollowers(tx: Queryable, changed: readonly string[] | undefined): Promise<void> {
    for (const f of this.followers) await f.read?.(tx, changed);
  }

  /** Make `snapshot` current and hand it to the followers, in one synchronous step. */
  private publish(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void {
    this.current = snapshot;
    for (const f of this.followers) f.follow(snapshot, changed);
  }
}
