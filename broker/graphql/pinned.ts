/**
 * Datasets answered from the in-memory view at one registry version, carrying what their nested
 * fields need (replicas, canonical columns, sites) from that same version, so those are answered
 * without SQL (pinned-fields.ts) and the whole answer reads one version. Each object also gives
 * mercurius a short loader key (its `toJSON`) for the fields still loaded from SQL, instead of
 * the JSON of all its fields.
 */
import type { DatasetRow, ReplicaRow, SiteRow } from '../../registry/store/queries/rows.js';
import type { PlannerSite, PlannerSnapshot } from '../planner/index.js';
import { canonicalColumns, visibleTo, type HeldDataset } from '../services/catalogue-view.js';
import type { CatalogueColumn } from '../../registry/store/queries/replica-details.js';
import type { Visibility } from './context.js';

/** A dataset row answered from the view, with its replicas and columns at the same version. */
export class PinnedDataset implements DatasetRow {
  readonly id: string;
  readonly title: string | null;
  readonly description: string | null;

  constructor(
    row: DatasetRow,
    private readonly held: HeldDataset,
    private readonly snapshot: PlannerSnapshot,
    private readonly visibility: Visibility,
  ) {
    this.id = row.id;
    this.title = row.title;
    this.description = row.description;
  }

  /** Its first `limit` replicas the reader may see, ordered by site as SQL orders them. */
  replicas(limit: number): PinnedReplica[] {
    const out: PinnedReplica[] = [];
    // The snapshot's lists of the dataset's replicas (ordered by site id, not as SQL orders them).
    const holders = this.snapshot.holdersOf(this.id);
    for (const r of this.held.replicas) {
      if (out.length >= limit) break;
      if (!visibleTo(r, this.visibility)) continue;
      const j = holders === undefined ? -1 : holders.positionOf(r.siteId);
      // The catalogue and the snapshot are read in one transaction: one holds what the other does.
      if (holders === undefined || j < 0) throw new Error(`replica of ${this.id} at ${r.siteId} missing from the planner snapshot at version ${this.snapshot.version}`);
      out.push(PinnedReplica.of(holders.sites[j], holders.local[j], r.title));
    }
    return out;
  }

  /** Its canonical columns as the reader sees them. */
  columns(): readonly CatalogueColumn[] {
    return canonicalColumns(this.held, this.visibility);
  }

  /** The loader key: the id names the dataset within one request. */
  toJSON(): string {
    return this.id;
  }
}

/** A replica answered from the view, with its site's row at the same version. */
export class PinnedReplica implements ReplicaRow {
  readonly id: number;
  readonly datasetId: string;
  readonly siteId: string;
  readonly serviceId: string;
  readonly table: string;
  readonly title: string | null;
  readonly description: string | null;
  readonly rows: number | null;
  readonly rowBytes: number | null;
  readonly position: ReplicaRow['position'];
  readonly access: ReplicaRow['access'];
  /** Its site's row at the same registry version. */
  readonly site: SiteRow;

  private constructor(site: PlannerSite, i: number, title: string | null) {
    const c = site.columns;
    this.site = site.site;
    this.id = c.numbers[3 * i];
    this.datasetId = c.datasets[i];
    this.siteId = site.site.id;
    this.serviceId = c.serviceIds[i];
    this.table = c.tables[i];
    this.title = title;
    // Not a field of the GraphQL Replica; no loader reads it.
    this.description = null;
    this.rows = site.rows(i);
    this.rowBytes = site.rowBytes(i);
    this.position = c.positions[i];
    this.access = c.access[i];
  }

  /** Replica `i` of `site`, read straight from the site's columns (no intermediate row), with the catalogue's `title`. */
  static of(site: PlannerSite, i: number, title: string | null): PinnedReplica {
    return new PinnedReplica(site, i, title);
  }

  /** The loader key: the registry id names the replica. */
  toJSON(): number {
    return this.id;
  }
}

/** Datasets from the view's page, pinned to `snapshot` (at the catalogue's version); undefined when one cannot be answered whole. */
export function pinDatasets(rows: readonly DatasetRow[], heldOf: (id: string) => HeldDataset | undefined, snapshot: PlannerSnapshot, visibility: Visibility): PinnedDataset[] | undefined {
  const out: PinnedDataset[] = [];
  for (const row of rows) {
    const held = heldOf(row.id);
    if (held === undefined || !held.columnsExact) return undefined;
    out.push(new PinnedDataset(row, held, snapshot, visibility));
  }
  return out;
}
