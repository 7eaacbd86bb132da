/** GraphQL for jobs: submit (query or container), read, cancel, and follow one job's changes. */
import { readChanges, type Changes } from './changes.js';
import type { JobState, SiteContainerJob } from '../../registry/model/adapter.js';
import { ConstellationError, ErrorCodes } from '../../registry/model/errors.js';
import { sitesByIds } from '../../registry/store/queries/sites.js';
import { recordJobEvent, type JobKind, type JobRow } from '../../registry/store/queries/jobs.js';
import { ANONYMOUS_IDENTITY, isAdmin, ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { credentialedCandidates, keepJobCredentials, type CandidateRefusal } from '../jobs/job-credentials.js';
import { containerKind } from '../jobs/kinds/container.js';
import { kindOf } from '../jobs/kinds/index.js';
import { queryKind } from '../jobs/kinds/query.js';
import { isTerminal } from '../jobs/state.js';
import type { ContainerJobInput } from '../jobs/route-container.js';
import type { QueryInput } from '../jobs/route-query.js';
import { planOf, type JobCandidate, type JobPlan, type PlanRecord } from '../jobs/plan.js';
import type { Caller } from '../planner/index.js';
import { checkStageTarget, stageTargetOf } from '../staging/target.js';
import { stagedToOf } from '../staging/stage-result.js';
import { callerOf } from './context.js';
import { checkLimit, listLimit } from './limits.js';


/** The pubsub topic of one job's changes. */
export const jobTopic = (id: string): string => `job:${id}`;

/** What job resolvers need; subscriptions get no per-request read scope, so everything goes through the pool. */
interface JobContext {
  services: Services;
  /** Who is asking; anonymous when absent. */
  identity?: Identity;
  /** The member site the caller is inside, when they are (the fast lane). */
  callerSite?: string;
  /** The request's budget; subscriptions have none (their answers are one job at a time). */
  budget?: { charge(n: number, field: string): void };
  db?: { release(): Promise<void> };
  pubsub?: { subscribe(topic: string): Promise<JobChanges> };
}

/** A subscription's stream of one job's changes. */
type JobChanges = Changes<{ jobUpdated: JobRow }>;

/** What every submit input has: the retry key, and where to stage the result. */
interface SubmitInput {
  idempotencyKey?: string | null;
  stageTo?: unknown;
}

/** The caller (anonymous until the request's identity says otherwise). */
function identityOf(ctx: JobContext): Identity {
  return ctx.identity ?? ANONYMOUS_IDENTITY;
}

/** The owner of the caller's jobs. */
function ownerIn(ctx: JobContext): string {
  return ownerOf(identityOf(ctx));
}

/** UNAUTHENTICATED for an anonymous submit where the federation allows anonymous callers to read only. */
function checkMaySubmit(ctx: JobContext): void {
  if (identityOf(ctx).kind === 'anonymous' && ctx.services.config.identity?.anonymous === 'read') {
    throw new ConstellationError('UNAUTHENTICATED', 'this federation runs jobs only for callers who are logged in (identity.anonymous: read); log in (constellation login, or /login in a browser) and submit again');
  }
}

/**
 * Submit a routed job: a retried call with the same key returns the job it made, otherwise the
 * request is routed (planned and written for each eligible site), the caller's credential for
 * each candidate site is resolved while their token is at hand, and the job is handed to the job
 * service, which keeps those credentials (sealed) before it sends the job anywhere.
 */
async function submitRouted(
  kind: JobKind,
  input: SubmitInput,
  route: (caller: Caller) => Promise<{ candidates: JobCandidate[]; plan: PlanRecord }> | { candidates: JobCandidate[]; plan: PlanRecord },
  ctx: JobContext,
): Promise<JobRow> {
  checkMaySubmit(ctx);
  checkStageTarget(input.stageTo, ctx.services.config.sites);
  // Submitting writes and may wait on a site; this request's read transaction must not be held meanwhile.
  await ctx.db?.release();
  const identity = identityOf(ctx);
  const owner = ownerOf(identity);
  const key = input.idempotencyKey ?? undefined;
  const earlier = await ctx.services.jobs.existing(owner, key, input);
  if (earlier) return earlier;
  const routed = await route(callerOf(identity, ctx.callerSite));
  const { pool, config } = ctx.services;
  const keys = ctx.services.identity?.keys;
  // The result may be staged into the user's space at another site: that site needs their credential too.
  const stageSite = stageTargetOf(input)?.site;
  const resolved = await credentialedCandidates(config, identity, routed.candidates, { db: pool, issuer: ctx.services.identity?.provider, keys }, stageSite ? [stageSite] : []);
  return ctx.services.jobs.submit({
    kind,
    owner,
    idempotencyKey: key,
    request: input,
    candidates: resolved.candidates,
    plan: routed.plan,
    beforeDispatch: async (job) => {
      await keepJobCredentials(pool, keys, job.id, resolved.credentials);
      await recordRefusals(ctx.services, job, resolved.refusals);
    },
  });
}

/** The candidates left out for want of the caller's credential, in the job's history (so "why not there" is answerable). */
async function recordRefusals(services: Services, job: JobRow, refusals: readonly CandidateRefusal[]): Promise<void> {
  for (const r of refusals) {
    await recordJobEvent(services.pool, { jobId: job.id, state: job.state, siteId: r.siteId, errorCode: ErrorCodes[r.kind].code, message: `${r.siteId}: skipped: ${r.message}` });
  }
}

/**
 * The job as it is now, then each change, until a final state. Changes can arrive twice (this
 * broker's own and the database's notification of it); a snapshot equal to the last is skipped.
 */
async function followJob(id: string, ctx: JobContext): Promise<AsyncIterable<{ jobUpdated: JobRow }>> {
  if (!ctx.pubsub) throw new ConstellationError('INTERNAL', 'jobUpdated is a subscription: ask it over a subscription transport');
  const changes = await ctx.pubsub.subscribe(jobTopic(id));
  // Subscribed before reading, so no change between the read and the first push is missed.
  // Another owner's job is NOT_FOUND, exactly as a job that does not exist.
  const current = await ctx.services.jobs.get(id, ownerIn(ctx));
  if (!current) {
    changes.destroy?.();
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
      for await (const change of readChanges(changes)) {
        if (!fresh(change.jobUpdated)) continue;
        yield change;
        if (isTerminal(change.jobUpdated.state)) return;
      }
    } finally {
      changes.destroy?.();
    }
  })();
}

/** Resolvers merged into the root resolvers. */
export const jobResolvers = {
  Query: {
    job: (_root: unknown, { id }: { id: string }, ctx: JobContext) => ctx.services.jobs.get(id, ownerIn(ctx)).then((j) => j ?? null),
    jobs: async (_root: unknown, { filter, limit, offset }: { filter?: { states?: JobState[] | null; kinds?: JobKind[] | null; allOwners?: boolean | null } | null; limit: number; offset: number }, ctx: JobContext) => {
      listLimit('Query.jobs', limit);
      checkLimit('offset', offset, Number.MAX_SAFE_INTEGER);
      const identity = identityOf(ctx);
      const allOwners = filter?.allOwners === true;
      if (allOwners && !isAdmin(identity)) throw new ConstellationError('FORBIDDEN', 'jobs(filter: {allOwners: true}) lists every owner\'s jobs and is for admins only; leave allOwners out to list your own');
      // With an identity provider an anonymous job is reachable only by its unguessable id: no
      // caller without a token can list them. Without one the federation is single-tenant.
      if (!allOwners && identity.kind === 'anonymous' && ctx.services.config.identity) return [];
      const jobs = await ctx.services.jobs.list(allOwners ? null : ownerOf(identity), { states: filter?.states ?? undefined, kinds: filter?.kinds ?? undefined, limit, offset });
      ctx.budget?.charge(jobs.length, 'Query.jobs');
      return jobs;
    },
  },
  Mutation: {
    submitQuery: (_root: unknown, { input }: { input: QueryInput }, ctx: JobContext) =>
      submitRouted(queryKind.kind, input, (caller) => queryKind.route(input, ctx.services.planner.snapshot, ctx.services.pool, caller), ctx),
    submitJob: (_root: unknown, { input }: { input: ContainerJobInput }, ctx: JobContext) =>
      submitRouted(containerKind.kind, input, (caller) => containerKind.route(input, ctx.services.planner.snapshot, caller), ctx),
    cancelJob: async (_root: unknown, { id }: { id: string }, ctx: JobContext) => {
      await ctx.db?.release();
      return ctx.services.jobs.cancel(id, ownerIn(ctx));
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
    stagedTo: (job: JobRow, _args: unknown, ctx: JobContext) => stagedToOf(ctx.services.pool, job),
    results: (job: JobRow) => kindOf(job.kind).resultsLink(job),
    // A damaged stored plan is this field's INTERNAL error; the rest of the job still answers.
    plan: (job: JobRow) => planOf(job),
    history: async (job: JobRow, { limit }: { limit: number }, ctx: JobContext) => {
      const n = listLimit('Job.history', limit);
      // A job's history is a few lines per transition; it is read whole and cut to the limit.
      const events = (await ctx.services.jobs.history(job.id)).slice(0, n);
      ctx.budget?.charge(events.length, 'Job.history');
      return events;
    },
  },
  JobPlan: {
    plan: (p: JobPlan) => p.record,
  },
  JobCandidate: {
    resolveType: (c: JobCandidate) => kindOf(c.kind).candidateType,
  },
  SiteContainerJob: {
    env: (j: SiteContainerJob) => Object.entries(j.env).map(([name, value]) => ({ name, value })),
  },
  JobEvent: {
    from: (e: { fromState: JobState | null }) => e.fromState,
    to: (e: { toState: JobState }) => e.toState,
    site: (e: { siteId: string | null }) => e.siteId,
  },
};
