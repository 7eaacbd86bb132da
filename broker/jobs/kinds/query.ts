/** QUERY jobs: an ADQL query rewritten for each site, run as TAP sync (kept by the broker) or async (UWS). */
import { ConstellationError } from '../../../registry/model/errors.js';
import type { Queryable } from '../../../registry/store/db.js';
import type { Caller, PlannerSnapshot } from '../../planner/index.js';
import { routeQuery, type QueryInput, type RoutedQuery } from '../route-query.js';
import type { JobKindHandler } from './handler.js';

/** The QUERY kind, and how a submitQuery input is routed. */
export const queryKind: JobKindHandler<'QUERY'> & { route(input: QueryInput, snapshot: PlannerSnapshot, db: Queryable, caller: Caller): Promise<RoutedQuery> } = {
  kind: 'QUERY',
  candidateType: 'QueryCandidate',
  route: (input, snapshot, db, caller) => routeQuery(snapshot, db, input, caller),
  async submit(site, ctx, candidate, runId) {
    if (!site.adapter.submitQuery) throw new ConstellationError('INVALID_ARGUMENT', `site ${candidate.siteId} does not run queries`);
    return site.adapter.submitQuery(ctx, { ...candidate.siteQuery, runId });
  },
  keepsAnswer: (candidate, status) => candidate.siteQuery.mode === 'sync' && status.state === 'COMPLETED',
  // A synchronous query is only a read, so it is sent again; an async one is looked up by its run id.
  async findLost(site, ctx, candidate, runId, since) {
    if (candidate.siteQuery.mode === 'sync') return { outcome: 'absent' };
    if (!site.adapter.findQueryJob) return { outcome: 'unknown' };
    const found = await site.adapter.findQueryJob(ctx, { ...candidate.siteQuery, runId }, since);
    return found ? { outcome: 'found', submission: found } : { outcome: 'absent' };
  },
  resultKept: (candidate) => candidate.siteQuery.mode === 'sync',
  noResult: 'the site does not serve results',
  resultsLink(job) {
    if (job.state !== 'COMPLETED') return null;
    const format = job.requestedFormat;
    return `/results/${job.id}${format && format !== 'votable' ? `?format=${format}` : ''}`;
  },
};
