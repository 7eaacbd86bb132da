/** GraphQL for jobs: submit (query or container), read, cancel, and follow one job's changes. */
import type { JobState } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { sitesByIds } from '../../registry/store/queries/sites.js';
import type { JobKind, JobRow } from '../../registry/store/queries/jobs.js';
import type { Services } from '../factory.js';
import type { Caller } from '../planner/index.js';
import { isTerminal } from '../jobs/state.js';
import { routeContainerJob, type ContainerJobInput } from '../jobs/route-container.js';
import { routeQuery, type QueryInput } from '../jobs/route-query.js';

/** Every caller until identity arrives: no groups, so only public replicas are eligible. */
export const ANONYMOUS: Caller = { groups: [] };
/** The owner every job has until identity arrives. */
const OWNER = 'anonymous';

/** The pubsub topic of one job's changes. */
export const jobTopic = (id: string): string => `job:${id}`;

/** What job resolvers need; subscriptions get no per-request read scope, so everything goes through the pool. */
interface JobContext {
  services: Services;
  db?: { release(): Promise<void> };
  pubsub?: { subscribe(topic: string): Promise<AsyncIterable<{ jobUpdated: JobRow }>> };
}

function checkRange(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ConstellationError('INVALID_ARGUMENT', `${name} must be an integer from 0 to ${max}, got ${value}`);
}

async function submitQuery(input: QueryInput, ctx: JobContext): Promise<JobRow> {
  const { jobs, planner, pool } = ctx.services;
  // Submitting writes and may wait on a site; this request's read transaction must not be held meanwhile.
  await ctx.db?.release();
  const key = input.idempotencyKey ?? undefined;
  const earlier = await jobs.existing(OWNER, key, input);
  if (earlier) return earlier;
  const routed = await routeQuery(planner.snapshot, pool, input, ANONYMOUS);
  return jobs.submit({ kind: 'QUERY', owner: OWNER, idempotencyKey: key, request: input, candidates: routed.candidates, plan: routed.plan });
}

async function submitContainer(input: ContainerJobInput, ctx: JobContext): Promise<JobRow> {
  const { jobs, planner } = ctx.services;
  await ctx.db?.release();
  const key = input.idempotencyKey ?? undefined;
  const earlier = await jobs.existing(OWNER, key, input);
  if (earlier) return earlier;
  const routed = routeContainerJob(planner.snapshot, input, ANONYMOUS);
  return jobs.submit({ kind: 'CONTAINER', owner: OWNER, idempotencyKey: key, request: input, candidates: routed.candidates, plan: routed.plan });
}

/**
 * The job as it is now, then each change, until a final state. Changes can arrive twice (this
 * broker's own and the database's notification of it); a snapshot equal to the last is skipped.
 */
async function followJob(id: string, ctx: JobContext): Promise<AsyncIterable<{ jobUpdated: JobRow }>> {
  const changes = await ctx.pubsub!.subscribe(jobTopic(id));
  // Subscribed before reading, so no change between the read and the first push is missed.
  const current = await ctx.services.jobs.get(id, OWNER);
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
    job: (_root: unknown, { id }: { id: string }, ctx: JobContext) => ctx.services.jobs.get(id, OWNER).then((j) => j ?? null),
    jobs: (_root: unknown, { filter, limit, offset }: { filter?: { states?: JobState[] | null; kinds?: JobKind[] | null } | null; limit: number; offset: number }, ctx: JobContext) => {
      checkRange('limit', limit, 500);
      checkRange('offset', offset, Number.MAX_SAFE_INTEGER);
      return ctx.services.jobs.list(OWNER, { states: filter?.states ?? undefined, kinds: filter?.kinds ?? undefined, limit, offset });
    },
  },
  Mutation: {
    submitQuery: (_root: unknown, { input }: { input: QueryInput }, ctx: JobContext) => submitQuery(input, ctx),
    submitJob: (_root: unknown, { input }: { input: ContainerJobInput }, ctx: JobContext) => submitContainer(input, ctx),
    cancelJob: async (_root: unknown, { id }: { id: string }, ctx: JobContext) => {
      await ctx.db?.release();
      return ctx.services.jobs.cancel(id, OWNER);
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
    history: (job: JobRow, _args: unknown, ctx: JobContext) => ctx.services.jobs.history(job.id),
  },
  JobEvent: {
    from: (e: { fromState: JobState | null }) => e.fromState,
    to: (e: { toState: JobState }) => e.toState,
    site: (e: { siteId: string | null }) => e.siteId,
  },
};
