/**
 * One site as the planner holds it: the site's own rows as objects, and its replicas as columns
 * (typed arrays and arrays of shared strings) with their coverage packed (registry/coverage/
 * packed.ts). A site is immutable and shared by every snapshot generation it is unchanged in;
 * a plan reads the columns and makes no object per replica. Callers that want a replica as an
 * object (routing a chosen site, the cross-match planner) get a PlannerReplica view made on demand.
 */
import type { SMoc } from '../../registry/coverage/moc.js';
import type { PackedCoverage, PackedReach } from '../../registry/coverage/packed.js';
import type { ComputeRow, ImageRow, ReplicaRow, ServiceRow, SiteRow } from '../../registry/store/queries/rows.js';

/** A replica's registry row as the planner keeps it: every column but the title and description, which no plan reads. */
export type PlannerReplicaRow = Omit<ReplicaRow, 'title' | 'description'>;

/** Who may read a replica (shared by replicas with the same rule). */
export type ReplicaAccess = ReplicaRow['access'];

/** A replica's position columns (shared by replicas naming the same ones). */
export type ReplicaPosition = NonNullable<ReplicaRow['position']>;

/** A cap holding a replica's coverage: unit centre, and the margin a cone's radius is widened by before its centre is tested against it. */
export type Reach = PackedReach;

/** One replica with its coverage (null = unknown, treated as the whole sky), made on demand from its site's columns. */
export interface PlannerReplica {
  readonly row: PlannerReplicaRow;
  /** The coverage at order 12 at most, as the planner tests it. */
  readonly moc: SMoc | null;
  /** A cap holding `moc`, to rule out far cones at once (null: test the MOC itself). */
  readonly reach: Reach | null;
}

/** The columns of a site's replicas, replica i at index i (ordered by dataset id). */
export interface ReplicaColumns {
  readonly datasets: readonly string[];
  /** 3 per replica: registry id, rows (NaN: unknown), row width in bytes (NaN: unknown). */
  readonly numbers: Float64Array;
  readonly serviceIds: readonly string[];
  readonly tables: readonly string[];
  readonly positions: readonly (ReplicaPosition | null)[];
  readonly access: readonly ReplicaAccess[];
  /** Coverage i is replica i's. */
  readonly coverage: PackedCoverage;
}

/** Everything the planner knows about one site. */
export class PlannerSite {
  /** Replicas held, by canonical dataset id (a view over the columns). */
  readonly replicas: ReadonlyMap<string, PlannerReplica>;
  /** Number of replicas. */
  readonly count: number;

  constructor(
    readonly site: SiteRow,
    /** Multiplier from federation.yaml (default 1). */
    readonly preference: number,
    readonly services: ReadonlyMap<string, ServiceRow>,
    /** Compute pools ordered by id. */
    readonly pools: readonly ComputeRow[],
    readonly images: readonly ImageRow[],
    /** @internal The replicas' columns, read by plans, the snapshot and the coverage view. */
    readonly columns: ReplicaColumns,
  ) {
    this.count = columns.datasets.length;
    this.replicas = new SiteReplicas(this);
    Object.freeze(this);
  }

  /** This site with its own row replaced (a change of asOf, status or name): services, pools, images and replicas shared. */
  withRow(site: SiteRow): PlannerSite {
    return new PlannerSite(site, this.preference, this.services, this.pools, this.images, this.columns);
  }

  /** The number of the replica of `dataset`, or -1. */
  find(dataset: string): number {
    const ids = this.columns.datasets;
    let a = 0;
    let b = ids.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (ids[m] < dataset) a = m + 1;
      else b = m;
    }
    return a < ids.length && ids[a] === dataset ? a : -1;
  }

  /** Rows of replica i (null: unknown). */
  rows(i: number): number | null {
    const v = this.columns.numbers[3 * i + 1];
    return v === v ? v : null;
  }

  /** Row width of replica i in bytes (null: unknown). */
  rowBytes(i: number): number | null {
    const v = this.columns.numbers[3 * i + 2];
    return v === v ? v : null;
  }

  /** Whether a caller in `groups` may read replica i. */
  readable(i: number, groups: ReadonlySet<string>): boolean {
    const access = this.columns.access[i];
    return access.public || access.groups.some((g) => groups.has(g));
  }

  /** Replica i as an object. */
  replica(i: number): PlannerReplica {
    return new ReplicaView(this, i);
  }
}

/** A replica made from its site's columns; its row and coverage are built when first read. */
class ReplicaView implements PlannerReplica {
  private row_: PlannerReplicaRow | undefined;
  private moc_: SMoc | null | undefined;

  constructor(
    private readonly site: PlannerSite,
    private readonly i: number,
  ) {}

  get row(): PlannerReplicaRow {
    if (this.row_ === undefined) {
      const { site, i } = this;
      const c = site.columns;
      this.row_ = Object.freeze({
        id: c.numbers[3 * i], datasetId: c.datasets[i], siteId: site.site.id, serviceId: c.serviceIds[i], table: c.tables[i],
        rows: site.rows(i), rowBytes: site.rowBytes(i), position: c.positions[i], access: c.access[i],
      });
    }
    return this.row_;
  }

  get moc(): SMoc | null {
    if (this.moc_ === undefined) this.moc_ = this.site.columns.coverage.toSMoc(this.i);
    return this.moc_;
  }

  get reach(): Reach | null {
    return this.site.columns.coverage.reach(this.i);
  }
}

/** The replicas of a site by dataset id, read from its columns (each lookup makes a PlannerReplica). */
class SiteReplicas implements ReadonlyMap<string, PlannerReplica> {
  constructor(private readonly site: PlannerSite) {}

  get size(): number {
    return this.site.count;
  }

  get(dataset: string): PlannerReplica | undefined {
    const i = this.site.find(dataset);
    return i < 0 ? undefined : this.site.replica(i);
  }

  has(dataset: string): boolean {
    return this.site.find(dataset) >= 0;
  }

  *keys(): MapIterator<string> {
    yield* this.site.columns.datasets;
  }

  *values(): MapIterator<PlannerReplica> {
    for (let i = 0; i < this.site.count; i++) yield this.site.replica(i);
  }

  *entries(): MapIterator<[string, PlannerReplica]> {
    for (let i = 0; i < this.site.count; i++) yield [this.site.columns.datasets[i], this.site.replica(i)];
  }

  [Symbol.iterator](): MapIterator<[string, PlannerReplica]> {
    return this.entries();
  }

  forEach(fn: (value: PlannerReplica, key: string, map: ReadonlyMap<string, PlannerReplica>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}
