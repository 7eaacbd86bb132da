/** Root resolvers: thin calls into the registry queries and services. */
import type { IResolvers } from 'mercurius';
import { ConstellationError } from '../../registry/model/errors.js';
import { datasetsByIds, searchDatasets } from '../../registry/store/queries/catalogue.js';
import { searchImages } from '../../registry/store/queries/resources.js';
import { listSites, sitesByIds } from '../../registry/store/queries/sites.js';
import { documentById, documentsBySite } from '../../registry/store/queries/history.js';
import { harvestRunsBySite } from '../../registry/store/queries/harvest.js';
import type { DatasetRow, DocumentRow, SiteRow } from '../../registry/store/queries/rows.js';
import { coneTest, datasetsInRegion, filterCone, type ConeArg, type RegionArg } from './region.js';
import { compareC } from '../services/catalogue-text.js';
import { DateTimeScalar, JSONScalar } from './scalars.js';
import { plan, type Plan, type PlanRequest } from '../planner/index.js';
import { callerOf, visibilityOf, type GraphQLContext } from './context.js';
import { ownerOf } from '../auth/identity.js';
import { linkedSiteIds } from '../auth/linked-credentials.js';
import { jobResolvers } from './job-resolvers.js';
import { threadResolvers } from './thread-resolvers.js';
import { credentialResolvers } from './credential-resolvers.js';
import { checkLimit, listLimit } from './limits.js';
import { pinDatasets } from './pinned.js';
import { viewAnswers } from './view-selection.js';
import type { GraphQLResolveInfo } from 'graphql';

interface DatasetFilterArg {
  text?: string | null;
  ucd?: string | null;
  site?: string | null;
  cone?: ConeArg | null;
  region?: RegionArg | null;
}
interface ImageFilterArg {
  name?: string | null;
  software?: string | null;
  type?: string | null;
  arch?: string | null;
  digest?: string | null;
  site?: string | null;
}


const upper = (v: string | null) => (v === null ? null : v.toUpperCase());

/** Resolvers for schema.graphql. */
// Field resolvers receive typed parents; IResolvers types them as `any`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const resolvers: IResolvers<any, GraphQLContext> = {
  JSON: JSONScalar,
  DateTime: DateTimeScalar,
  Query: {
    sites: async (_root, { limit }: { limit: number }, ctx) => {
      const n = listLimit('Query.sites', limit);
      return charged(ctx, 'Query.sites', (await listSites(ctx.db)).slice(0, n));
    },
    site: async (_root, { id }: { id: string }, ctx) => (await sitesByIds(ctx.db, [id]))[0] ?? null,
    datasets: async (_root, args: { filter?: DatasetFilterArg | null; limit: number; offset: number }, ctx, info: GraphQLResolveInfo) =>
      charged(ctx, 'Query.datasets', await searchDatasetsFor(args, ctx, viewAnswers(info))),
    dataset: async (_root, { id }: { id: string }, ctx) => (await datasetsByIds(ctx.db, [id], visibilityOf(ctx.identity)))[0] ?? null,
    // The view is kept current by publishes, harvests and a poll; planning never waits on SQL.
    me: async (_root, _args, ctx) => {
      const me = ctx.identity;
      if (me.kind !== 'user') return null;
      return { subject: me.subject, name: me.name ?? null, email: me.email ?? null, groups: me.groups, roles: me.roles, linkedSites: () => linkedSiteIds(ctx.db, ownerOf(me)) };
    },
    plan: (_root, { request }: { request: PlanRequest }, ctx) => {
      const snapshot = ctx.services.planner.snapshot;
      // A plan is made from the snapshot: any SQL read of the same request must be at its version.
      if (!ctx.db.pinView(snapshot.version)) throw registryMoved(snapshot.version);
      return plan(snapshot, request, callerOf(ctx.identity, ctx.callerSite));
    },
    images: async (_root, { filter, limit }: { filter?: ImageFilterArg | null; limit: number }, ctx) =>
      charged(ctx, 'Query.images', await searchImages(ctx.db, {
        name: filter?.name ?? undefined,
        software: filter?.software ?? undefined,
        type: filter?.type ?? undefined,
        arch: filter?.arch ?? undefined,
        digest: filter?.digest ?? undefined,
        site: filter?.site ?? undefined,
        limit: listLimit('Query.images', limit),
      })),
    ...jobResolvers.Query,
    ...threadResolvers.Query,
  },
  Mutation: {
    ...jobResolvers.Mutation,
    ...threadResolvers.Mutation,
    ...credentialResolvers.Mutation,
    harvest: async (_root, { siteId, confirm }: { siteId: string; confirm?: boolean | null }, ctx) => {
      await ctx.db.release();
      ctx.services.rights.checkAdmin(ctx.identity, 'harvesting through the API');
      return ctx.services.harvester.harvest(siteId, 'graphql', { confirm: confirm === true });
    },
    publishCapabilities: async (_root, { siteId, document }: { siteId: string; document: unknown }, ctx) => {
      ctx.services.rights.checkPublish(ctx.identity, siteId, ctx.publishKey);
      // Publishing writes through the pool; this request's read transaction must not hold it up.
      await ctx.db.release();
      const result = await ctx.services.publisher.publish(siteId, document, 'publish');
      return (await sitesByIds(ctx.services.pool, [result.siteId]))[0];
    },
  },
  Site: {
    origin: (site: SiteRow) => upper(site.origin),
    seeded: (site: SiteRow) => site.origin === 'seed',
    harvests: async (site: SiteRow, { limit }: { limit: number }, ctx) =>
      charged(ctx, 'Site.harvests', await harvestRunsBySite(ctx.db, site.id, listLimit('Site.harvests', limit))),
    documents: async (site: SiteRow, { limit }: { limit: number }, ctx) =>
      charged(ctx, 'Site.documents', await documentsBySite(ctx.db, site.id, listLimit('Site.documents', limit))),
  },
  Plan: {
    // The sites holding none of the data are counted by the planner; listing them is asked for.
    candidates: (p: Plan, { everySite }: { everySite?: boolean | null }) => (everySite === true ? p.withoutData.everySite(p.candidates) : p.candidates),
    sitesWithoutData: (p: Plan) => p.withoutData.count,
  },
  Candidate: {
    // A plan is made from the planner's snapshot, and so are its sites: planning reads no SQL
    // (a site is never removed from the registry; SQL only if one is missing all the same).
    site: (c: { site: string }, _args: unknown, ctx: GraphQLContext) => {
      ctx.budget.charge(1, 'references');
      return ctx.services.planner.snapshot.site(c.site)?.site ?? sitesByIds(ctx.db, [c.site]).then((rows) => rows[0] ?? null);
    },
  },
  ComputePool: {
    service: (p: { serviceId: string | null }) => p.serviceId,
  },
  SiteDocument: {
    origin: (d: DocumentRow) => d.origin.toUpperCase(),
    // Read only when asked for, and only while the request's answer stays under its byte cap:
    // its size is known before the body is read.
    document: async (d: DocumentRow, _args: unknown, ctx) => {
      ctx.budget.chargeBytes(d.bytes, 'SiteDocument.document');
      return documentById(ctx.db, d.id);
    },
  },
  Subscription: { ...jobResolvers.Subscription, ...threadResolvers.Subscription },
  Thread: threadResolvers.Thread,
  ThreadStep: threadResolvers.ThreadStep,
  Job: jobResolvers.Job,
  JobEvent: jobResolvers.JobEvent,
  JobPlan: jobResolvers.JobPlan,
  JobCandidate: jobResolvers.JobCandidate,
  SiteContainerJob: jobResolvers.SiteContainerJob,
};

/** `rows`, charged to the request's budget as the answer of `field`. */
function charged<T>(ctx: GraphQLContext, field: string, rows: T[]): T[] {
  ctx.budget.charge(rows.length, field);
  return rows;
}

/** The answer when a request's SQL reads and the in-memory view are at different registry versions (rare: a publish landed meanwhile). */
function registryMoved(version: number): ConstellationError {
  return new ConstellationError('REGISTRY_CHANGED', `the registry changed while this request was answered (the in-memory view is at version ${version}); retry it`);
}

type DatasetsArgs = { filter?: DatasetFilterArg | null; limit: number; offset: number };

/**
 * The datasets a `datasets(filter, limit, offset)` call asks for, all at one registry version.
 * When the view answers the whole selection (`wholeFromView`), the page and its nested fields
 * come from the in-memory catalogue and snapshot, pinned at their version, with no SQL at all.
 * Otherwise the request's transaction is opened first: at the view's version, the view gives
 * the page and SQL the nested fields; at another, SQL answers alone (a sky region, which only
 * the view can match, is then refused as a retryable change of the registry).
 */
async function searchDatasetsFor(args: DatasetsArgs, ctx: GraphQLContext, wholeFromView: boolean) {
  listLimit('Query.datasets', args.limit);
  checkLimit('offset', args.offset, Number.MAX_SAFE_INTEGER);
  const { catalogue, planner } = ctx.services;
  if (wholeFromView && planner.version === catalogue.version) {
    // Everything below is synchronous: the catalogue, coverage index and snapshot stay at one version.
    const snapshot = planner.snapshot;
    const page = fromView(args, ctx);
    const pinned = page === undefined ? undefined : pinDatasets(page, (id) => catalogue.held(id), snapshot, visibilityOf(ctx.identity));
    if (pinned !== undefined && ctx.db.pinView(snapshot.version)) return pinned;
  }
  for (let attempt = 0; ; attempt++) {
    const version = await ctx.db.version();
    if (catalogue.version === version && ctx.db.pinView(version)) return fromView(args, ctx) ?? fromSql(args, ctx, regionOf(args, ctx));
    if (!args.filter?.cone && !args.filter?.region) return fromSql(args, ctx, undefined);
    // Only the view matches a sky region: when nothing of the request has read its transaction
    // yet, bring the view up to that version and start the transaction again.
    if (attempt >= 2 || !(await ctx.db.restartUnread())) throw registryMoved(catalogue.version);
    await planner.refresh(ctx.services.pool, version);
  }
}

/** The ids in the filter's sky region (from the coverage index), or undefined without one. */
function regionOf({ filter }: DatasetsArgs, ctx: GraphQLContext): ReadonlySet<string> | undefined {
  return filter?.cone || filter?.region ? datasetsInRegion(ctx.services.coverage, filter.cone, filter.region, visibilityOf(ctx.identity))! : undefined;
}

/** Datasets a cone may reject while the page is walked before the cone is matched through the coverage index instead. */
const CONE_WALK_BUDGET = 4096;

/**
 * The page from the in-memory catalogue, or undefined when it cannot match exactly as SQL would.
 * A cone is first tested dataset by dataset along the page's order (a page of a common region
 * is found after a few hundred); a rare one, through the coverage index over every replica.
 */
function fromView(args: DatasetsArgs, ctx: GraphQLContext): DatasetRow[] | undefined {
  const { filter, limit, offset } = args;
  const { catalogue, planner } = ctx.services;
  const visibility = visibilityOf(ctx.identity);
  const search = { text: filter?.text ?? undefined, ucd: filter?.ucd ?? undefined, site: filter?.site ?? undefined, visibility, limit, offset };
  const cone = filterCone(filter?.cone, filter?.region);
  if (cone !== undefined && planner.version === catalogue.version) {
    const page = catalogue.search(search, coneTest(planner.snapshot, cone, visibility, CONE_WALK_BUDGET));
    if (page !== undefined) return page;
  }
  const matched = regionOf(args, ctx);
  if (matched?.size === 0) return [];
  return catalogue.search({ ...search, ids: matched });
}

/** The page from SQL, in the request's transaction, within the region's `matched` ids when there is one. */
async function fromSql({ filter, limit, offset }: DatasetsArgs, ctx: GraphQLContext, matched: ReadonlySet<string> | undefined): Promise<DatasetRow[]> {
  if (matched?.size === 0) return [];
  const visibility = visibilityOf(ctx.identity);
  const search = { text: filter?.text ?? undefined, ucd: filter?.ucd ?? undefined, site: filter?.site ?? undefined, visibility, limit, offset };
  const ids = matched === undefined ? undefined : [...matched].sort(compareC);
  // With no other constraint the page is known here; SQL then reads only that page (and
  // checks visibility again against its own snapshot of the registry).
  if (ids !== undefined && !filter?.text && !filter?.ucd && !filter?.site) {
    return searchDatasets(ctx.db, { ids: ids.slice(offset, offset + limit), visibility, limit, offset: 0 });
  }
  return searchDatasets(ctx.db, { ...search, ids });
}
