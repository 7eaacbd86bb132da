/** GraphQL for cross-match threads: start, read, list, cancel, and follow one thread's changes. Owner-only, as jobs. */
import { ConstellationError } from '../../registry/model/errors.js';
import type { StrategyCandidateRecord } from '../../registry/model/thread.js';
import type { ThreadRow, ThreadState, ThreadStepRow } from '../../registry/store/queries/threads.js';
import { ANONYMOUS_IDENTITY, ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import type { ThreadDifferences } from '../threads/differences.js';
import { candidateMovement, stepMovement } from '../threads/movement.js';
import type { CrossmatchInput } from '../threads/situation.js';
import { readChanges, type Changes } from './changes.js';
import { checkLimit, listLimit } from './limits.js';

/** The pubsub topic of one thread's changes. */
export const threadTopic = (id: string): string => `thread:${id}`;

interface ThreadContext {
  services: Services;
  identity?: Identity;
  budget?: { charge(n: number, field: string): void };
  db?: { release(): Promise<void> };
  pubsub?: { subscribe(topic: string): Promise<ThreadChanges> };
  /** The member site the request comes from (the fast lane). */
  callerSite?: string;
}

type ThreadChanges = Changes<{ threadUpdated: ThreadRow }>;

function identityOf(ctx: ThreadContext): Identity {
  return ctx.identity ?? ANONYMOUS_IDENTITY;
}

function ownerIn(ctx: ThreadContext): string {
  return ownerOf(identityOf(ctx));
}

function finished(state: ThreadState): boolean {
  return state === 'COMPLETED' || state === 'ERROR' || state === 'ABORTED';
}

/** The thread now, then each change, until a final state; another owner's thread is NOT_FOUND. */
async function followThread(id: string, ctx: ThreadContext): Promise<AsyncIterable<{ threadUpdated: ThreadRow }>> {
  if (!ctx.pubsub) throw new ConstellationError('INTERNAL', 'threadUpdated is a subscription: ask it over a subscription transport');
  const changes = await ctx.pubsub.subscribe(threadTopic(id));
  const current = await ctx.services.threads.get(id, ownerIn(ctx));
  if (!current) {
    changes.destroy?.();
    throw new ConstellationError('NOT_FOUND', `no thread ${id}`);
  }
  return (async function* () {
    try {
      yield { threadUpdated: current };
      if (finished(current.state)) return;
      for await (const change of readChanges(changes)) {
        yield change;
        if (finished(change.threadUpdated.state)) return;
      }
    } finally {
      changes.destroy?.();
    }
  })();
}

/** A plan candidate as GraphQL shows it. */
function candidateView(c: StrategyCandidateRecord, chosen: boolean, callerSite: string | null) {
  return {
    strategy: c.strategy,
    chosen,
    eligible: c.eligible,
    reasons: c.reasons,
    leftSite: c.sites.left,
    rightSite: c.sites.right,
    uploadSide: c.upload?.side ?? null,
    estimatedLeftRows: c.rows.left,
    estimatedRightRows: c.rows.right,
    estimatedPairs: c.rows.pairs,
    estimatedBytesMoved: c.bytes.total,
    bytes: c.bytes,
    steps: c.steps,
    movement: candidateMovement(c, callerSite),
    tiling: c.tiling === null ? null : {
      order: c.tiling.order,
      tiles: c.tiling.order === null ? 1 : c.tiling.cells.length,
      perStepLeftRows: c.tiling.perStep.leftRows,
      perStepRightRows: c.tiling.perStep.rightRows,
      perStepPairs: c.tiling.perStep.pairsReturned,
      perStepUploadBytes: c.tiling.perStep.uploadBytes,
    },
  };
}

/** Resolvers merged into the root resolvers. */
export const threadResolvers = {
  Query: {
    thread: (_root: unknown, { id }: { id: string }, ctx: ThreadContext) => ctx.services.threads.get(id, ownerIn(ctx)).then((t) => t ?? null),
    threads: async (_root: unknown, { filter, limit, offset }: { filter?: { states?: ThreadState[] | null } | null; limit: number; offset: number }, ctx: ThreadContext) => {
      listLimit('Query.threads', limit);
      checkLimit('offset', offset, Number.MAX_SAFE_INTEGER);
      const identity = identityOf(ctx);
      // As jobs: with an identity provider, anonymous threads are reachable only by their unguessable id.
      if (identity.kind === 'anonymous' && ctx.services.config.identity) return [];
      const threads = await ctx.services.threads.list(ownerOf(identity), { states: filter?.states ?? undefined, limit, offset });
      ctx.budget?.charge(threads.length, 'Query.threads');
      return threads;
    },
  },
  Mutation: {
    crossmatch: async (_root: unknown, { input }: { input: CrossmatchInput }, ctx: ThreadContext) => {
      const identity = identityOf(ctx);
      if (identity.kind === 'anonymous' && ctx.services.config.identity?.anonymous === 'read') {
        throw new ConstellationError('UNAUTHENTICATED', 'this federation runs cross-matches only for callers who are logged in (identity.anonymous: read); log in and ask again');
      }
      // Starting writes and plans; this request's read transaction must not be held meanwhile.
      await ctx.db?.release();
      return ctx.services.threads.start(ownerOf(identity), identity, input, ctx.callerSite);
    },
    cancelThread: async (_root: unknown, { id }: { id: string }, ctx: ThreadContext) => {
      await ctx.db?.release();
      return ctx.services.threads.cancel(id, ownerIn(ctx));
    },
    rerunThread: async (_root: unknown, { id, replan }: { id: string; replan?: boolean | null }, ctx: ThreadContext) => {
      const identity = identityOf(ctx);
      if (identity.kind === 'anonymous' && ctx.services.config.identity?.anonymous === 'read') {
        throw new ConstellationError('UNAUTHENTICATED', 'this federation runs cross-matches only for callers who are logged in (identity.anonymous: read); log in and ask again');
      }
      await ctx.db?.release();
      return ctx.services.threads.rerun(id, ownerOf(identity), identity, replan ?? false, ctx.callerSite);
    },
  },
  Subscription: {
    threadUpdated: {
      subscribe: (_root: unknown, { id }: { id: string }, ctx: ThreadContext) => followThread(id, ctx),
    },
  },
  Thread: {
    steps: async (t: ThreadRow, { limit }: { limit: number }, ctx: ThreadContext) => {
      const n = listLimit('Thread.steps', limit);
      const steps = (await ctx.services.threads.steps(t.id)).slice(0, n);
      ctx.budget?.charge(steps.length, 'Thread.steps');
      const callerSite = t.record.intact ? t.record.plan.callerSite : null;
      return steps.map((s) => ({ ...s, ...stepMovement(s.kind, s.siteId, s.bytesIn, s.bytesOut, callerSite) }));
    },
    // A damaged stored plan is this field's INTERNAL error; the rest of the thread still answers.
    plan: (t: ThreadRow) => {
      if (!t.record.intact) throw t.record.error;
      const { plan } = t.record;
      return { forced: plan.forced, formula: plan.formula, callerSite: plan.callerSite, candidates: plan.candidates.map((c, i) => candidateView(c, i === plan.chosen, plan.callerSite)) };
    },
    progress: (t: ThreadRow, _args: unknown, ctx: ThreadContext) => ctx.services.threads.progress(t.id),
    results: (t: ThreadRow) => (t.state === 'COMPLETED' ? `/results/${t.id}` : null),
    error: (t: ThreadRow) => (t.errorMessage !== null && t.state !== 'COMPLETED' ? { code: t.errorCode ?? 'ABORTED', message: t.errorMessage } : null),
    // The original belongs to the same owner (a re-run is made only from one's own thread).
    rerunOf: (t: ThreadRow, _args: unknown, ctx: ThreadContext) => (t.rerunOf ? ctx.services.threads.get(t.rerunOf, t.owner).then((o) => o ?? null) : null),
    differences: (t: ThreadRow, _args: unknown, ctx: ThreadContext) => ctx.services.threads.differences(t),
    provenance: (t: ThreadRow, _args: unknown, ctx: ThreadContext) => ctx.services.threads.provenance(t.id, t.owner),
  },
  ThreadDifferences: {
    steps: (d: ThreadDifferences, { limit }: { limit: number }, ctx: ThreadContext) => {
      const steps = d.steps.slice(0, listLimit('ThreadDifferences.steps', limit));
      ctx.budget?.charge(steps.length, 'ThreadDifferences.steps');
      return steps;
    },
  },
  ThreadStep: {
    id: (s: ThreadStepRow) => `${s.threadId}/${s.ordinal}`,
    site: (s: ThreadStepRow) => s.siteId,
    job: (s: ThreadStepRow, _args: unknown, ctx: ThreadContext) => (s.jobId ? ctx.services.jobs.get(s.jobId).then((j) => j ?? null) : null),
    tile: (s: ThreadStepRow) => ({ order: s.tileOrder, cell: s.tileCell }),
    error: (s: ThreadStepRow) => (s.errorCode ? { code: s.errorCode, message: s.errorMessage ?? '' } : null),
  },
};
