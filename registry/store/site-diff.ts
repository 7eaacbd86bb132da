/**
 * What must be written to turn a site's stored rows into the rows of its new document: only
 * rows that are new or differ are written, only rows that are gone are deleted. Pure: no database.
 */
import type { ColumnState, ComputeState, DatasetRow, ImageState, ReplicaState, ServiceState } from './queries/rows.js';
import type { ReplicaEntry, SiteState, StoredReplica } from './site-state.js';

/** A column to write, by its replica's dataset id and its ordinal. */
export interface ColumnChange extends ColumnState {
  datasetId: string;
  ordinal: number;
}

/** The writes of one publish, table by table. */
export interface SiteChanges {
  services: { upsert: ServiceState[]; remove: string[] };
  /** Replicas new or changed (by dataset id), and the stored ones to delete (their columns and coverage go with them). */
  replicas: { upsert: ReplicaState[]; remove: { id: number; datasetId: string }[] };
  /** Columns new or changed, and for kept replicas whose list got shorter, how many to keep. */
  columns: { upsert: ColumnChange[]; trim: { datasetId: string; keep: number; drop: number }[] };
  coverage: { upsert: { datasetId: string; moc: string }[]; remove: string[] };
  compute: { upsert: ComputeState[]; remove: string[] };
  images: { upsert: ImageState[]; remove: string[] };
  /**
   * Canonical datasets: those of new or changed replicas (created when missing, a missing title
   * or description filled), and those a deleted replica may have left without any replica.
   */
  datasets: { upsert: DatasetRow[]; released: string[] };
}

/** The changes from `stored` to `target`. */
export function diffSite(stored: SiteState<StoredReplica>, target: SiteState): SiteChanges {
  const changes: SiteChanges = {
    services: keyedDiff(stored.services, target.services),
    replicas: { upsert: [], remove: [] },
    columns: { upsert: [], trim: [] },
    coverage: { upsert: [], remove: [] },
    compute: keyedDiff(stored.compute, target.compute),
    images: keyedDiff(stored.images, target.images),
    datasets: { upsert: [], released: [] },
  };
  for (const [datasetId, want] of target.replicas) diffReplica(stored.replicas.get(datasetId), want, changes);
  for (const [datasetId, had] of stored.replicas) {
    if (target.replicas.has(datasetId)) continue;
    changes.replicas.remove.push({ id: had.id, datasetId });
    changes.datasets.released.push(datasetId);
  }
  return changes;
}

/** Rows of `want` that `had` lacks or holds differently, and keys `had` holds that `want` drops. */
function keyedDiff<T extends object>(had: ReadonlyMap<string, T>, want: ReadonlyMap<string, T>): { upsert: T[]; remove: string[] } {
  const upsert: T[] = [];
  for (const [key, row] of want) {
    const old = had.get(key);
    if (old === undefined || !sameRow(old, row)) upsert.push(row);
  }
  return { upsert, remove: [...had.keys()].filter((key) => !want.has(key)) };
}

/** Record what one replica of the document needs against what is stored for its dataset. */
function diffReplica(had: StoredReplica | undefined, want: ReplicaEntry, changes: SiteChanges): void {
  const { datasetId } = want.row;
  if (had === undefined || !sameRow(had.row, want.row)) {
    changes.replicas.upsert.push(want.row);
    changes.datasets.upsert.push({ id: datasetId, title: want.row.title, description: want.row.description });
  }
  const oldColumns = had?.columns ?? [];
  want.columns.forEach((column, ordinal) => {
    const old = oldColumns[ordinal];
    if (old === undefined || !sameRow(old, column)) changes.columns.upsert.push({ datasetId, ordinal, ...column });
  });
  if (oldColumns.length > want.columns.length) changes.columns.trim.push({ datasetId, keep: want.columns.length, drop: oldColumns.length - want.columns.length });
  const oldMoc = had?.moc ?? null;
  if (want.moc !== oldMoc) {
    if (want.moc === null) changes.coverage.remove.push(datasetId);
    else changes.coverage.upsert.push({ datasetId, moc: want.moc });
  }
}

/** True when every field of `b` equals the same field of `a` (string arrays element by element). */
export function sameRow<T extends object>(a: T, b: T): boolean {
  for (const key of Object.keys(b) as (keyof T)[]) {
    const x = a[key];
    const y = b[key];
    if (x === y) continue;
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}

/** How many rows `changes` writes or deletes itself (canonical datasets aside, which are shared; cascades aside). */
export function changedRows(changes: SiteChanges): { upserted: number; deleted: number } {
  const c = changes;
  return {
    upserted: c.services.upsert.length + c.replicas.upsert.length + c.columns.upsert.length + c.coverage.upsert.length
      + c.compute.upsert.length + c.images.upsert.length,
    deleted: c.services.remove.length + c.replicas.remove.length + c.columns.trim.reduce((n, t) => n + t.drop, 0) + c.coverage.remove.length
      + c.compute.remove.length + c.images.remove.length,
  };
}
