/**
 * The planner's site built from a publish (PublishedSite) rather than from its rows read back:
 * the same inputs buildSite takes from loadRows, taken from the document's rows, the replica ids
 * and the site row the publishing transaction returned.
 */
import type { PublishedSite } from '../../registry/store/published-site.js';
import { Interner, buildSite, type ReplicaInput } from './site-builder.js';
import type { PlannerSite } from './site.js';

/** The site `published` left, as a load of its rows would build it; `previous` lends the coverage of unchanged MOC texts. */
export function siteFromPublished(published: PublishedSite, preference: number, previous: PlannerSite | undefined): PlannerSite {
  const siteId = published.row.id;
  const { state } = published;
  const replicas: (ReplicaInput & { moc: string | null })[] = [];
  for (const [datasetId, r] of state.replicas) {
    const id = published.replicaIds.get(datasetId);
    if (id === undefined) throw new Error(`published site "${siteId}" lacks the id of its replica of "${datasetId}"`);
    const { raColumn: ra, decColumn: dec } = r.row;
    replicas.push({
      id, datasetId, serviceId: r.row.serviceId, table: r.row.table, rows: r.row.rows, rowBytes: r.row.rowBytes,
      // As the replica query builds it: a position when the RA column is given (validation requires both together).
      position: ra === null || dec === null ? null : { ra, dec },
      access: { public: r.row.public, groups: r.row.groups },
      moc: r.moc,
    });
  }
  return buildSite({
    site: published.row,
    preference,
    services: [...state.services.values()].map((s) => ({ siteId, ...s })),
    pools: [...state.compute.values()].map((p) => ({ siteId, ...p })),
    images: [...state.images.values()].map((m) => ({ siteId, ...m })),
  }, replicas, (r) => r.moc, new Interner(), previous);
}
