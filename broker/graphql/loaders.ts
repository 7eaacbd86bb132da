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
import type { CatalogueColumn } from '../../registry/store/queries/replica-details.js';
import { visibilityOf, type GraphQLContext, type Visibility } from './context.js';
import { listLimit } from './limits.js';

type Query<T> = { obj: T; params: unknown };

/**
 * A loader for the list field `field` (Type.field): every call's `limit` is checked before any
 * SQL runs, the rows of all parents are read at once (`read` may stop at the batch's largest
 * limit per parent), and each parent gets its own first `limit` rows (aliases of one field may
 * ask different limits in one batch); the objects handed out are charged to the request's budget.
 * (Parents answered from the in-memory view never reach a loader: see pinned-fields.ts.)
 */
function listLoader<P, R>(
  field: string,
  parentKey: (p: P) => string | number,
  read: (db: GraphQLContext['db'], keys: (string | number)[], perParent: number, visibility: Visibility) => Promise<R[]>,
  rowKey: (r: R) => string | number,
) {
  return async (queries: Query<P>[], ctx: GraphQLContext): Promise<R[][]> => {
    const limits = queries.map((q) => listLimit(field, (q.params as { limit: number }).limit));
    const rows = await read(ctx.db, unique(queries.map((q) => parentKey(q.obj))), Math.max(...limits), visibilityOf(ctx.identity));
    const groups = new Map<string | number, R[]>();
    for (const r of rows) {
      const k = rowKey(r);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(r);
    }
    const out = queries.map((q, i) => (groups.get(parentKey(q.obj)) ?? []).slice(0, limits[i]));
    ctx.budget.charge(out.reduce((n, g) => n + g.length, 0), field);
    return out;
  };
}

/** One parent → at most one row (charged to the request's budget). */
function oneFor<P, R>(ctx: GraphQLContext, queries: Query<P>[], parentKey: (p: P) => string, rows: R[], rowKey: (r: R) => string): (R | null)[] {
  ctx.budget.charge(queries.length, 'references');
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
  return oneFor(ctx, queries, (r) => String(r.id), await rows, (c) => String(c.replicaId));
}

export const loaders: MercuriusLoaders<GraphQLContext> = {
  Site: {
    services: listLoader('Site.services', (s: SiteRow) => s.id, (db, ids) => servicesBySites(db, ids as string[]), (r) => r.siteId),
    // A site may hold tens of thousands of replicas: read only the page asked for. The other
    // lists of a site and a replica's columns are bounded by the document caps.
    replicas: listLoader('Site.replicas', (s: SiteRow) => s.id, (db, ids, perParent, visibility) => replicasBySites(db, ids as string[], perParent, visibility), (r) => r.siteId),
    compute: listLoader('Site.compute', (s: SiteRow) => s.id, (db, ids) => computeBySites(db, ids as string[]), (r) => r.siteId),
    images: listLoader('Site.images', (s: SiteRow) => s.id, (db, ids) => imagesBySites(db, ids as string[]), (r) => r.siteId),
    lastHarvest: async (queries: Query<SiteRow>[], ctx) =>
      oneFor(ctx, queries, (s) => s.id, await lastHarvestBySites(ctx.db, unique(queries.map((q) => q.obj.id))), (r) => r.siteId),
  },
  Dataset: {
    replicas: listLoader<DatasetRow, ReplicaRow>('Dataset.replicas', (d) => d.id, (db, ids, perParent, visibility) => replicasByDatasets(db, ids as string[], perParent, visibility), (r) => r.datasetId),
    columns: listLoader<DatasetRow, CatalogueColumn & { datasetId?: string }>('Dataset.columns', (d) => d.id, (db, ids, _perParent, visibility) => canonicalColumnsByDatasets(db, ids as string[], visibility), (r) => r.datasetId ?? ''),
  },
  Replica: {
    site: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(ctx, queries, (r) => r.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
    dataset: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(ctx, queries, (r) => r.datasetId, await datasetsByIds(ctx.db, unique(queries.map((q) => q.obj.datasetId)), visibilityOf(ctx.identity)), (d) => d.id),
    service: async (queries: Query<ReplicaRow>[], ctx) =>
      oneFor(ctx, queries, (r) => `${r.siteId}/${r.serviceId}`, await servicesBySites(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => `${s.siteId}/${s.id}`),
    // Coverage text can be large, so it is read only when a query asks for it.
    coverage: async (queries: Query<ReplicaRow>[], ctx) => (await coverageOf(queries, ctx)).map((c) => c?.moc ?? null),
    skyFraction: async (queries: Query<ReplicaRow>[], ctx) => (await coverageOf(queries, ctx)).map((c) => c?.skyFraction ?? null),
    columns: listLoader('Replica.columns', (r: ReplicaRow) => r.id, (db, ids) => columnsByReplicas(db, ids as number[]), (c) => c.replicaId),
  },
  HarvestRun: {
    site: async (queries: Query<{ siteId: string }>[], ctx) =>
      oneFor(ctx, queries, (r) => r.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
  },
  Image: {
    site: async (queries: Query<ImageRow>[], ctx) =>
      oneFor(ctx, queries, (i) => i.siteId, await sitesByIds(ctx.db, unique(queries.map((q) => q.obj.siteId))), (s) => s.id),
  },
};
