/** GraphQL for jobs: submit (query or container), read, cancel, and follow one job's changes. */
import type { JobState } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { sitesByIds } from '../../registry/store/queries/sites.js';
import type { JobKind, JobRow } from '../../registry/store/queries/jobs.js';
import type { Services } from '../factory.js';
import { isTerminal } from '../jobs/state.js';
import { routeContainerJob, type ContainerJobInput } from '../jobs/route-container.js';
import { routeQuery, type QueryInput } from '../jobs/route-query.js';
import type { PlanRecord } from '../jobs/placement.js';
import type { JobCandidate } from '../jobs/plan.js';
import { ANONYMOUS, ANONYMOUS_OWNER } from './context.js';
import { checkLimit, listLimit } from './limits.js';


/** The pubsub topic of one job's changes. */
export const jobTopic = (id: string): string => `job:${id}`;

/** What job resolvers need; subscriptions get no per-request read scope, so everything goes through the pool. */
interface JobContext {
  services: Services;
  /** The request's budget; subscriptions have none (their answers are one job at a time). */
  budget?: { charge(n: number, field: string): void };
  db?: { release(): Promise<void> };
  pubsub?: { subscribe(topic: string): Promise<AsyncIterable<{ jobUpdated: JobRow }>> };
}

/**
 * Submit a routed job: a retried call with the same key returns the job it made, otherwise the
 * request is routed (planned and written for each eligible site) and handed to the job service.
 */
async function submitRouted(
  kind: JobKind,
  input: { idempotencyKey?: string | null },
  route: () => Promise<{ candidates: JobCandidate[]; plan: PlanRecord }> | { candidates: JobCandidate[]; plan: PlanRecord },
  ctx: JobContext,
): Promise<JobRow> {
  // Submitting writes and may wait on a site; this request's read transaction must not be held meanwhile.
  await ctx.db?.release();
  const key = input.idempotencyKey ?? undefined;
  const earlier = await ctx.services.jobs.existing(ANONYMOUS_OWNER, key, input);
  if (earlier) return earlier;
  const routed = await route();
  return ctx.services.jobs.submit({ kind, owner: ANONYMOUS_OWNER, idempotencyKey: key, request: input, candidates: routed.candidates, plan: routed.plan });
}

/**
 * The job as it is now, then each change, until a final state. Changes can arrive twice (this
 * broker's own and the database's notification of it); a snapshot equal to the last is skipped.
 */
async function followJob(id: string, ctx: JobContext): Promise<AsyncIterable<{ jobUpdated: JobRow }>> {
  const changes = await ctx.pubsub!.subscribe(jobTopic(id));
  // Subscribed before reading, so no change between the read and the first push is missed.
  const current = await ctx.services.jobs.get(id, ANONYMOUS_OWNER);
  if (!current) {
    (changes as unknown as { destroy?: () => void }).destroy?.();
    throw new ConstellationError('NOT_FOUND', `no job ${id}`);
  }
  return (async function* () {
    let last = '';
    const fresh = (job: JobRow) => {
      const stamp = `${job.updatedAt.getTime()}|${job.state}|${job.sitePhase}|${job.unreachableSince?.getTime()}`;
      if (stamp === last) return false;
      last = stamp;
      return true;
    };
    try {
      if (fresh(current)) yield { jobUpdated: current };
      if (isTerminal(current.state)) return;
      for await (const change of changes) {
        if (!fresh(change.jobUpdated)) continue;
        yield change;
        if (isTerminal(change.jobUpdated.state)) return;
      }
    } finally {
      (changes as unknown as { destroy?: () => void }).destroy?.();
    }
  })();
}

/** Resolvers merged into the root resolvers. */
export const jobResolvers = {
  Query: {
    job: (_root: unknown, { id }: { id: string }, ctx: JobContext) => ctx.services.jobs.get(id, ANONYMOUS_OWNER).then((j) => j ?? null),
    jobs: (_root: unknown, { filter, limit, offset }: { filter?: { states?: JobState[] | null; kinds?: JobKind[] | null } | null; limit: number; offset: number }, ctx: JobContext) => {
      listLimit('Query.jobs', limit);
      checkLimit('offset', offset, Number.MAX_SAFE_INTEGER);
      return ctx.services.jobs.list(ANONYMOUS_OWNER, { states: filter?.states ?? undefined, kinds: filter?.kinds ?? undefined, limit, offset }).then((jobs) => {
        ctx.budget?.charge(jobs.length, 'Query.jobs');
        return jobs;
      });
    },
  },
  Mutation: {
    submitQuery: (_root: unknown, { input }: { input: QueryInput }, ctx: JobContext) =>
      submitRouted('QUERY', input, () => routeQuery(ctx.services.planner.snapshot, ctx.services.pool, input, ANONYMOUS), ctx),
    submitJob: (_root: unknown, { input }: { input: ContainerJobInput }, ctx: JobContext) =>
      submitRouted('CONTAINER', input, () => routeContainerJob(ctx.services.planner.snapshot, input, ANONYMOUS), ctx),
    cancelJob: async (_root: unknown, { id }: { id: string }, ctx: JobContext) => {
      await ctx.db?.release();
      return ctx.services.jobs.cancel(id, ANONYMOUS_OWNER);
    },
  },
  Subscription: {
    jobUpdated: {
      subscribe: (_root: unknown, { id }: { id: string }, ctx: JobContext) => followJob(id, ctx),
    },
  },
  Job: {
    site: async (job: JobRow, _args: unknown, ctx: JobContext) => (job.siteId ? ((await sitesByIds(ctx.services.pool, [job.siteId]))[0] ?? null) : null),
    error: (job: JobRow) => (job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? '' } : null),
    results: (job: JobRow) => {
      if (job.kind !== 'QUERY' || job.state !== 'COMPLETED') return null;
      const format = (job.request as QueryInput).format?.toLowerCase();
      return `/results/${job.id}${format && format !== 'votable' ? `?format=${format}` : ''}`;
    },
    history: async (job: JobRow, { limit }: { limit: number }, ctx: JobContext) => {
      const n = listLimit('Job.history', limit);
      // A job's history is a few lines per transition; it is read whole and cut to the limit.
      const events = (await ctx.services.jobs.history(job.id)).slice(0, n);
      ctx.budget?.charge(events.length, 'Job.history');
      return events;
    },
  },
  JobEvent: {
    from: (e: { fromState: JobState | null }) => e.fromState,
    to: (e: { toState: JobState }) => e.toState,
    site: (e: { siteId: string | null }) => e.siteId,
  },
};
