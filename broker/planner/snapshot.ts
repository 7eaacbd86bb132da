/**
 * An immutable in-memory view of what planning needs, so a plan is a pure synchronous walk with
 * no SQL. Sites (site.ts) hold their replicas as columns with packed coverage and are shared
 * between generations: a reload after a publish rebuilds only the sites that changed, the
 * replica lists of the datasets they touch, and those datasets' sky indexes.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type pg from 'pg';
import { PackedSkyIndex } from '../../registry/coverage/packed-index.js';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { withTransaction, type Queryable } from '../../registry/store/db.js';
import { coverageBySites, replicasBySites } from '../../registry/store/queries/catalogue.js';
import { computeBySites, imagesBySites, servicesBySites } from '../../registry/store/queries/resources.js';
import type { ComputeRow, ImageRow, ReplicaRow, ServiceRow, SiteRow, SiteStatus } from '../../registry/store/queries/rows.js';
import { listSites, registryVersion, sitesByIds } from '../../registry/store/queries/sites.js';
import { LayeredMap } from './layered-map.js';
import { listColumns, type ReplicaFacts } from './replica-facts.js';
import { Interner, buildSite, type ReplicaInput } from './site-builder.js';
import { PlannerSite, type PlannerReplica } from './site.js';

export { PlannerSite, type PlannerReplica, type PlannerReplicaRow } from './site.js';

/**
 * Datasets with at least this many replicas get a sky index of their own. Below it, testing
 * each replica's bounding cap and then its MOC is faster (per cone: 2.4 µs against 12 µs at 20
 * replicas; the two meet near 300).
 */
export const INDEX_MIN_REPLICAS = 256;

/** The replicas of one dataset, ordered by site id: replica `local[j]` of `sites[j]`; immutable. */
export class DatasetReplicas {
  constructor(
    readonly sites: readonly PlannerSite[],
    readonly local: Int32Array,
    /** A sky index whose id j is the j-th replica, when there are INDEX_MIN_REPLICAS or more. */
    readonly index: PackedSkyIndex | undefined,
    /** What a plan tests of replica j (public, coverage kind, cap), stored together (replica-facts.ts). */
    readonly facts: ReplicaFacts,
  ) {}

  /** Number of replicas. */
  get length(): number {
    return this.local.length;
  }

  /**
   * The lists of one dataset's replicas from (site, replica) pairs already ordered by site id.
   * `previous`, the dataset's lists before, lends its sky index when they hold the same replicas
   * (the same columns, in the same order): a site whose own row alone changed costs no rebuild.
   * Otherwise `from[j]`, when given and ≥ 0, says that replica j is replica from[j] of `previous`,
   * whose facts are then copied rather than read from its site again.
   */
  static of(sites: PlannerSite[], local: number[], previous?: DatasetReplicas, from?: readonly number[]): DatasetReplicas {
    if (previous !== undefined && previous.holdsSame(sites, local)) return new DatasetReplicas(sites, previous.local, previous.index, previous.facts);
    let index: PackedSkyIndex | undefined;
    if (sites.length >= INDEX_MIN_REPLICAS) {
      index = new PackedSkyIndex();
      for (let j = 0; j < sites.length; j++) index.add(sites[j].columns.coverage, local[j]);
    }
    const columns = listColumns(sites, local, previous?.facts, from);
    return new DatasetReplicas(sites, columns.local, index, columns.facts);
  }

  /** Where the replica at `siteId` is in these lists (ordered by site id), or -1. */
  positionOf(siteId: string): number {
    let a = 0;
    let b = this.sites.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (this.sites[m].site.id < siteId) a = m + 1;
      else b = m;
    }
    return a < this.sites.length && this.sites[a].site.id === siteId ? a : -1;
  }

  /** Whether these (site, replica) pairs are this list's replicas: each site's columns and number the same. */
  private holdsSame(sites: readonly PlannerSite[], local: readonly number[]): boolean {
    if (sites.length !== this.sites.length) return false;
    for (let j = 0; j < sites.length; j++) if (sites[j].columns !== this.sites[j].columns || local[j] !== this.local[j]) return false;
    return true;
  }
}

/** How sites' preferences are looked up (federation.yaml `preference`). */
export type PreferenceOf = (siteId: string) => number;
export const NO_PREFERENCE: PreferenceOf = () => 1;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Two lists of sites ordered by id (no id in both) merged into one, so a reload sorts only the sites it brings. */
function mergeById(a: readonly PlannerSite[], b: readonly PlannerSite[]): PlannerSite[] {
  const out: PlannerSite[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i].site.id < b[j].site.id)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

/** Immutable planning state at one registry version. */
export class PlannerSnapshot {
  private constructor(
    readonly version: number,
    private readonly bySite: LayeredMap<string, PlannerSite>,
    private readonly byDataset: LayeredMap<string, DatasetReplicas>,
    /** Sites ordered by id. */
    readonly sites: readonly PlannerSite[],
    /**
     * The id of each site and whether it is DOWN, in `sites` order. A plan passes over every site,
     * and most hold none of the requested data: these dense arrays spare it a visit to each site.
     */
    readonly siteIds: readonly string[],
    readonly siteDown: readonly boolean[],
    /** Where each site is in `sites` (shared between generations holding the same sites). */
    private readonly positions: ReadonlyMap<string, number>,
  ) {}

  /** A snapshot over `sites` ordered by id, with their ids, health and positions derived afresh. */
  private static ordered(version: number, bySite: LayeredMap<string, PlannerSite>, byDataset: LayeredMap<string, DatasetReplicas>, sites: readonly PlannerSite[]): PlannerSnapshot {
    const siteIds = sites.map((s) => s.site.id);
    return new PlannerSnapshot(version, bySite, byDataset, sites, siteIds, sites.map((s) => s.site.status === 'DOWN'), new Map(siteIds.map((id, i) => [id, i])));
  }

  /** A snapshot from whole sites, building the dataset lists and sky indexes afresh. */
  static of(version: number, sites: Iterable<PlannerSite>): PlannerSnapshot {
    const bySite = new Map<string, PlannerSite>();
    for (const s of sites) bySite.set(s.site.id, s);
    const lists = new Map<string, { sites: PlannerSite[]; local: number[] }>();
    const ordered = [...bySite.values()].sort((a, b) => cmp(a.site.id, b.site.id));
    // Sites in id order, so every dataset's list comes out ordered by site id.
    for (const s of ordered) {
      const datasets = s.columns.datasets;
      for (let i = 0; i < datasets.length; i++) {
        let list = lists.get(datasets[i]);
        if (list === undefined) {
          list = { sites: [], local: [] };
          lists.set(datasets[i], list);
        }
        list.sites.push(s);
        list.local.push(i);
      }
    }
    const byDataset = new Map<string, DatasetReplicas>();
    for (const [dataset, list] of lists) byDataset.set(dataset, DatasetReplicas.of(list.sites, list.local));
    return PlannerSnapshot.ordered(version, LayeredMap.of(bySite), LayeredMap.of(byDataset), ordered);
  }

  /**
   * The next generation: `changed` sites replaced (absent from `next` = removed), the rest
   * shared. Its cost follows the change: the lists of the datasets the changed sites hold are
   * remade, the maps by site and by dataset are layered (layered-map.ts), and when no site joins
   * or leaves, the site order and positions are kept.
   */
  private withSites(version: number, changed: ReadonlySet<string>, next: readonly PlannerSite[]): PlannerSnapshot {
    // A site given in `next` replaces its namesake even when `changed` does not name it.
    const replaced = new Set([...changed, ...next.map((s) => s.site.id)]);
    const arriving = [...new Map(next.map((s) => [s.site.id, s])).values()].sort((a, b) => cmp(a.site.id, b.site.id));
    const siteChanges = new Map<string, PlannerSite | undefined>();
    const touched = new Set<string>();
    for (const id of replaced) {
      for (const d of this.bySite.get(id)?.columns.datasets ?? []) touched.add(d);
      siteChanges.set(id, undefined);
    }
    for (const s of arriving) {
      siteChanges.set(s.site.id, s);
      for (const d of s.columns.datasets) touched.add(d);
    }
    const bySite = this.bySite.with(siteChanges);
    const datasetChanges = new Map<string, DatasetReplicas | undefined>();
    const sites: PlannerSite[] = [];
    const local: number[] = [];
    // Per replica of the merged list, its position in the old list (-1: arriving).
    const from: number[] = [];
    for (const dataset of touched) {
      // The kept replicas (ordered by site id) merged with the arriving ones (ordered too).
      sites.length = 0;
      local.length = 0;
      from.length = 0;
      const old = this.byDataset.get(dataset);
      let j = 0;
      for (const s of arriving) {
        const i = s.find(dataset);
        if (i < 0) continue;
        for (; old !== undefined && j < old.length && old.sites[j].site.id < s.site.id; j++) {
          if (!replaced.has(old.sites[j].site.id)) {
            sites.push(old.sites[j]);
            local.push(old.local[j]);
            from.push(j);
          }
        }
        sites.push(s);
        local.push(i);
        from.push(-1);
      }
      for (; old !== undefined && j < old.length; j++) {
        if (!replaced.has(old.sites[j].site.id)) {
          sites.push(old.sites[j]);
          local.push(old.local[j]);
          from.push(j);
        }
      }
      // Copy-on-write: an older snapshot still planning keeps its own lists and index.
      datasetChanges.set(dataset, sites.length === 0 ? undefined : DatasetReplicas.of(sites.slice(), local, old, from));
    }
    const byDataset = this.byDataset.with(datasetChanges);
    let sameSites = true;
    for (const id of replaced) if ((this.bySite.get(id) === undefined) !== (bySite.get(id) === undefined)) sameSites = false;
    if (!sameSites) return PlannerSnapshot.ordered(version, bySite, byDataset, mergeById(this.sites.filter((s) => !replaced.has(s.site.id)), arriving));
    // The same sites as before: only the replaced ones move in the arrays.
    const ordered = this.sites.slice();
    const down = this.siteDown.slice();
    for (const s of arriving) {
      const at = this.positions.get(s.site.id)!;
      ordered[at] = s;
      down[at] = s.site.status === 'DOWN';
    }
    return new PlannerSnapshot(version, bySite, byDataset, ordered, this.siteIds, down, this.positions);
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

  /** The replicas of a dataset as columns ordered by site id, or undefined when none is held (what a plan reads). */
  holdersOf(dataset: string): DatasetReplicas | undefined {
    return this.byDataset.get(dataset);
  }

  /** Replicas of a dataset ordered by site id (empty when none), each made as an object for the caller. */
  replicasOf(dataset: string): readonly PlannerReplica[] {
    const list = this.byDataset.get(dataset);
    if (list === undefined) return EMPTY;
    return Array.from({ length: list.length }, (_, j) => list.sites[j].replica(list.local[j]));
  }

  /** The sky index of a dataset's replicas (id j = the j-th replica by site id), when it has enough replicas to warrant one. */
  coverageOf(dataset: string): PackedSkyIndex | undefined {
    return this.byDataset.get(dataset)?.index;
  }

  /** Number of replicas held. */
  get replicaCount(): number {
    let n = 0;
    for (const list of this.byDataset.values()) n += list.length;
    return n;
  }
}

const EMPTY: readonly PlannerReplica[] = Object.freeze([]);

/** Rows of one site as loaded from the database. */
interface SiteRows {
  site: SiteRow;
  services: ServiceRow[];
  replicas: ReplicaRow[];
  coverage: Map<string, string | null>;
  pools: ComputeRow[];
  images: ImageRow[];
}

/** Load the rows of these sites (all sites when `ids` is undefined) with six statements. */
export async function loadRows(db: Queryable, ids: readonly string[] | undefined): Promise<SiteRows[]> {
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

/**
 * Sites built from their rows, giving the event loop back between sites every 15 ms; a site of
 * `previous` lends its namesake the coverage of unchanged MOC texts.
 */
export async function buildSites(rows: readonly SiteRows[], preference: PreferenceOf, previous?: PlannerSnapshot): Promise<PlannerSite[]> {
  const interner = new Interner();
  const out: PlannerSite[] = [];
  let slice = performance.now();
  for (const r of rows) {
    const coverage = r.coverage;
    out.push(buildSite({ ...r, preference: preference(r.site.id) }, r.replicas, (replica) => coverage.get(replica.datasetId) ?? null, interner, previous?.site(r.site.id)));
    if (performance.now() - slice > 15) {
      await yieldToLoop();
      slice = performance.now();
    }
  }
  return out;
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
  /** A snapshot whose sites lend their namesakes the coverage of unchanged MOC texts (as PlannerView's reloads do). */
  previous?: PlannerSnapshot;
}

/** A snapshot from capability documents, without a database (unit tests and benches). */
export function snapshotFromDocuments(docs: readonly CapabilityDocument[], options: DocumentSnapshotOptions = {}): PlannerSnapshot {
  const interner = new Interner();
  let replicaId = 0;
  return PlannerSnapshot.of(options.version ?? 1, docs.map((doc) => {
    const siteId = doc.site.id;
    const asOf = new Date(doc.asOf);
    const site: SiteRow = {
      id: siteId, name: doc.site.name, platform: doc.site.platform, url: doc.site.url ?? null, location: doc.site.location ?? null,
      contact: doc.site.contact ?? null, status: options.status?.[siteId] ?? 'UP', origin: 'publish', asOf, publishedAt: asOf,
      registryVersion: options.version ?? 1, consecutiveFailures: 0,
    };
    const replicas: (ReplicaInput & { coverage: string | null })[] = doc.datasets.map((d) => ({
      id: ++replicaId, datasetId: d.id, serviceId: d.service, table: d.table, rows: d.rows ?? null, rowBytes: d.rowBytes ?? null,
      position: d.position ?? null, access: { public: d.access.public, groups: d.access.groups ?? [] }, coverage: d.coverage ?? null,
    }));
    return buildSite({
      site,
      preference: options.preference?.[siteId] ?? 1,
      services: doc.services.map((s) => ({
        siteId, id: s.id, type: s.type, url: s.url, standardId: s.standardId ?? null, title: s.title ?? null, upload: s.upload ?? false,
        async: s.async ?? false, maxRec: s.maxRec ?? null, uploadLimitBytes: s.uploadLimitBytes ?? null, languages: s.languages ?? [],
        formats: s.formats ?? [], auth: s.auth ?? [],
      })),
      pools: doc.compute.map((c) => ({
        siteId, id: c.id, kind: c.kind, serviceId: c.service ?? null, cores: c.cores, memoryGb: c.memoryGb, gpus: c.gpus ?? 0,
        freeCores: c.freeCores ?? null, freeMemoryGb: c.freeMemoryGb ?? null, queueWaitS: c.queueWaitS ?? null,
        maxWalltimeS: c.maxWalltimeS ?? null, maxCoresPerJob: c.maxCoresPerJob ?? null, maxMemoryGbPerJob: c.maxMemoryGbPerJob ?? null,
      })),
      images: doc.images.map((i) => ({
        siteId, ref: i.ref, digest: i.digest ?? null, arch: i.arch ?? null, types: i.types, software: i.software ?? [], compute: i.compute ?? null,
      })),
    }, replicas, (r) => r.coverage, interner, options.previous?.site(siteId));
  }));
}
