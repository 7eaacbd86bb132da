/**
 * Batched field loaders: each list field costs one SQL statement per request level,
 * whatever the number of parents (mercurius batches the calls of one tick).
 */
import type { MercuriusLoaders } from 'mercurius';
import { canonicalColumnsByDatasets, columnsByReplicas, coverageByReplicas, datasetsByIds, replicasByDatasets, replicasBySites } from '../../registry/store/queries/catalogue.js';
import { lastHarvestBySites } from '../../registry/store/queries/harvest.js';
import { computeBySites, imagesBySites, servicesBySites } from '../../registry/store/queries/resources.js';
import type { DatasetRow, ImageRow, ReplicaRow, SiteRow } from '../../registry/store/queries/rows.js';
import { sitesByIds } from '../../registry/store/queries/sites.js';
import type { GraphQLContext } from './context.js';

type Query<T> = { obj: T; params: unknown };

/** Group `rows` by `key` and answer each parent in order (empty list when none). */
function groupFor<P, R>(queries: Query<P>[], parentKey: (p: P) => string | number, rows: R[], rowKey: (r: R) => string | number): R[][] {
  const groups = new Map<string | number, R[]>();
  for (const r of rows) {
    const k = rowKey(r);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  return queries.map((q) => groups.get(parentKey(q.obj)) ?? []);
}

/** One parent → at most one row. */
function oneFor<P, R>(queries: Query<P>[], parentKey: (p: P) => string, rows: R[], rowKey: (r: R) => string): (R | null)[] {
  const byKey = new Map(rows.map((r) => [rowKey(r), r]));
  return queries.map((q) => byKey.get(parentKey(q.obj)) ?? null);
}

const unique = <T>(values: T[]) => [...new Set(values)];

/** The loaders for schema.graphql's list and reference fields. */
// coverage and skyFraction come from one query; asked for together in a request, they share it.
const coverageReads = new WeakMap<object, Map<string, ReturnType<typeof coverageByReplicas>>>();

async function coverageOf(queries: Query<ReplicaRow>[], ctx: GraphQLContext) {
  const ids = unique(queries.map((q) => q.obj.id));
  let reads = coverageReads.get(ctx.db);
  if (!reads) coverageReads.set(ctx.db, (reads = new Map()));
  const key = ids.join(',');
  let rows = reads.get(key);
  if (!rows) reads.set(key, (rows = coverageByReplicas(ctx.db, ids)));
  return oneFor(queries, (r) => String(r.id), await rows, (c) => String(c.replicaId));
}

export const loaders: MercuriusLoaders<GraphQLContext> = {
  Site: {
    services: async (queries: Query<SiteRow>[], ctx) =>
      groupFor(queries, (s) => s.id, await servicesBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
    replicas: async (queries: Query<SiteRow>[], ctx) =>
      groupFor(queries, (s) => s.id, await replicasBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
    compute: async (queries: Query<SiteRow>[], ctx) =>
      groupFor(queries, (s) => s.id, await computeBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
    images: async (queries: Query<SiteRow>[], ctx) =>
      groupFor(queries, (s) => s.id, await imagesBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
    lastHarvest: async (queries: Query<SiteRow>[], ctx) =>
      oneFor(queries, (s) => s.id, await lastHarvestBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
  },
  Dataset: {
    replicas: async (queries: Query<DatasetRow>[], ctx) =>
      groupFor(queries, (d) => d.id, await replicasByDatasets(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.datasetId),
    columns: async (queries: Query<DatasetRow>[], ctx) =>
      groupFor(queries, (d) => d.id, await canonicalColumnsByDatasets(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.datasetId),
  },
  Replica: {
    site: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(queries, (r) => r.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
    dataset: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(queries, (r) => r.datasetId, await datasetsByIds(ctx.db, unique(queries.map((q) => q.obj.datasetId))), (d) => d.id),
    service: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(queries, (r) => `${r.siteId}/${r.serviceId}`, await servicesBySites(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => `${s.siteId}/${s.id}`),
    // Coverage text can be large, so it is read only when a query asks for it.
    coverage: async (queries: Query<ReplicaRow>[], ctx) => (await coverageOf(queries, ctx)).map((c) => c?.moc ?? null),
    skyFraction: async (queries: Query<ReplicaRow>[], ctx) => (await coverageOf(queries, ctx)).map((c) => c?.skyFraction ?? null),
    columns: async (queries: Query<ReplicaRow>[], ctx) =>
      groupFor(queries, (r) => r.id, await columnsByReplicas(ctx.db, unique(queries.map((q) => q.obj.id))), (c) => c.replicaId),
  },
  Candidate: {
    site: async (queries: Query<{ site: string }>[], ctx) =>
      oneFor(queries, (c) => c.site, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.site))), (s) => s.id),
  },
  HarvestRun: {
    site: async (queries: Query<{ siteId: string }>[], ctx) =>
      oneFor(queries, (r) => r.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
  },
  Image: {
    site: async (queries: Query<ImageRow>[], ctx) =>
      oneFor(queries, (i) => i.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
  },
};
