/**
 * Cross-match threads (issue 11): plan, record, run and finish. A thread's site steps are
 * ordinary QUERY jobs submitted through the JobService with the owner's credentials (so leases,
 * resume and failover are the job service's); the thread itself is driven by one broker at a
 * time under a lease, and any broker takes over a thread whose driver stopped (the sweep). A
 * step's job is created under a key made of the thread and step, so a resumed thread never runs
 * a step twice. The result is written from the steps' kept results once every step completed;
 * a failed step ends the thread ERROR naming the tiles that are missing, never a partial result.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { ConstellationError, ErrorCodes, isConstellationError, type Violation } from '../../registry/model/errors.js';
import type { QueryCandidate } from '../../registry/model/job-plan.js';
import type { ThreadPlanRecord, ThreadRunbook } from '../../registry/model/thread.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';
import {
  claimThread, createThreadOnce, finishThread, forgetThreadResult, releaseThread, threadById, threadResultsExpired, threadByIdempotencyKey, threadSteps, threadsByOwner, threadsDue, touchThread, updateThreadStep,
  type ThreadRow, type ThreadState, type ThreadStepRow,
} from '../../registry/store/queries/threads.js';
import { groupsOf, type Identity } from '../auth/identity.js';
import type { UserSiteCredential } from '../auth/site-credentials.js';
import type { SecretKeys } from '../auth/secret-keys.js';
import type { TokenIssuer } from '../auth/token-exchange.js';
import type { Config } from '../config/config.js';
import { credentialedCandidates, keepJobCredentials } from '../jobs/job-credentials.js';
import type { JobService } from '../jobs/service.js';
import { isTerminal } from '../jobs/state.js';
import type { PlannerSnapshot } from '../planner/index.js';
import { brokerPairs, joinPairs, readStepTable, uploadTable, writeResultFile, type StepTable, type TilePairs } from './results.js';
import { joinQuery, readQueries, readSide, runbookOf, stepsOf, tilesOf, uploadJoinQuery } from './runbook.js';
import { buildSituation, type CrossmatchInput } from './situation.js';
import { planCrossmatch } from './strategies.js';
import type { Tile } from './tiles.js';
import { STRATEGIES, type CrossmatchPlan } from './types.js';
import { checksumOf } from './checksum.js';
import { differencesOf, type ThreadDifferences } from './differences.js';
import { threadProvenance, type ThreadProvenance } from './provenance.js';
import { keptThreadCredentials, sealThreadCredentials } from './thread-credentials.js';
import { brokerVersion } from './version.js';
import { currentDocuments, forgetThreadCredentials, setResultChecksum, setStepChecksum } from '../../registry/store/queries/thread-provenance.js';
import { Listeners } from '../services/listeners.js';

/** Settings of the thread service. */
export interface ThreadServiceOptions {
  /** Identifies this broker in thread leases (default: the job service's id). */
  brokerId?: string;
  /** How long a driver's claim on a thread lasts without renewal (default 30 s). */
  leaseMs?: number;
  /** How often unfinished threads nobody drives are looked for (default 5 s). */
  sweepMs?: number;
  /** Tiles run at once (crossmatch.maxParallelPerSite). */
  maxParallel: number;
  /** The matcher's memory budget, MiB (crossmatch.memoryMb). */
  memoryMb: number;
  /** Where result files go (default <dataDir>/results/threads). */
  resultDir: string;
  onError?: (err: unknown) => void;
}

/** The lease and sweep settings alone (federation.yaml does not set them; tests shorten them). */
export type ThreadTimings = Pick<ThreadServiceOptions, 'leaseMs' | 'sweepMs'>;

/** Where the owner's credentials come from (as for jobs). */
export interface ThreadCredentialSources {
  config: Config;
  issuer?: TokenIssuer;
  keys?: SecretKeys;
}

/** A thread's progress, from its steps. */
export interface ThreadProgress {
  stepsDone: number;
  stepsTotal: number;
  rows: number;
  bytes: number;
}

/** A request planned: the plan record, the runbook to run and the owner's credentials for its sites. */
interface Planned {
  plan: ThreadPlanRecord;
  book: ThreadRunbook;
  credentials: ReadonlyMap<string, UserSiteCredential>;
}

/** A thread step that ended without a result. */
class StepFailed extends Error {
  constructor(readonly step: ThreadStepRow, readonly code: string, message: string) {
    super(message);
  }
}

/** Starts, drives, cancels and reads cross-match threads. */
export class ThreadService {
  readonly brokerId: string;
  private readonly leaseMs: number;
  private readonly sweepMs: number;
  private readonly listeners: Listeners<ThreadRow>;
  private readonly driving = new Map<string, Promise<void>>();
  /** Credentials resolved at start, while the owner's token was at hand, per thread and site. */
  private readonly credentials = new Map<string, ReadonlyMap<string, UserSiteCredential>>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Aborted by stop(): threads driven here pause, their leases released for another broker. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly pool: pg.Pool,
    private readonly jobs: JobService,
    private readonly snapshot: () => PlannerSnapshot,
    private readonly sources: ThreadCredentialSources,
    private readonly options: ThreadServiceOptions,
  ) {
    this.brokerId = options.brokerId ?? jobs.brokerId;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.sweepMs = options.sweepMs ?? 5_000;
    this.listeners = new Listeners((err) => this.options.onError?.(err));
  }

  /** Call `listener` after every change to any thread this broker makes; returns the unsubscribe function. */
  onUpdate(listener: (thread: ThreadRow) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * Plan and record a thread, then run it in the background. A retried call with the owner's
   * same idempotency key returns the thread it made (another request under it is INVALID_ARGUMENT).
   * No eligible strategy is NO_ELIGIBLE_SITE with one violation per strategy. `callerSite`: the
   * member site the request comes from (the fast lane).
   */
  async start(owner: string, identity: Identity, input: CrossmatchInput, callerSite?: string): Promise<ThreadRow> {
    const key = input.idempotencyKey ?? undefined;
    if (key !== undefined && (key.length === 0 || key.length > 200)) throw new ConstellationError('INVALID_ARGUMENT', 'idempotencyKey must be 1 to 200 characters');
    if (key !== undefined) {
      const earlier = await threadByIdempotencyKey(this.pool, owner, key);
      if (earlier) return sameRequest(earlier, input);
    }
    const planned = await this.plan(identity, input, callerSite);
    const { thread, created } = await this.record(owner, input, planned, { idempotencyKey: key });
    if (!created) return sameRequest(thread, input);
    return thread;
  }

  /**
   * Run a thread again as a new thread of the same owner, linked to it (rerunOf): the same
   * runbook (sites, queries, tiles) unless `replan`, when the planner chooses anew for the same
   * request. The owner's credentials are resolved again from the caller's token. NOT_FOUND when
   * `owner` does not own `id`; a thread whose stored record is damaged cannot be re-run as it was.
   */
  async rerun(id: string, owner: string, identity: Identity, replan: boolean, callerSite?: string): Promise<ThreadRow> {
    const original = await this.get(id, owner);
    if (!original) throw new ConstellationError('NOT_FOUND', `no thread ${id}`);
    const request = requestOf(original.request);
    let planned: Planned;
    if (replan) planned = await this.plan(identity, request, callerSite);
    else {
      if (!original.record.intact) throw original.record.error;
      planned = { plan: original.record.plan, ...(await this.credentialed(identity, original.record.runbook)) };
    }
    return (await this.record(owner, request, planned, { rerunOf: original.id })).thread;
  }

  /** Plan a request and resolve the caller's credentials for the chosen runbook's sites. */
  private async plan(identity: Identity, input: CrossmatchInput, callerSite: string | undefined): Promise<Planned> {
    const built = await buildSituation(this.snapshot(), this.pool, input, { groups: groupsOf(identity), ...(callerSite ? { site: callerSite } : {}) });
    const plan = planCrossmatch(built.situation);
    if (plan.chosen === null) throw refusal(plan);
    return { plan: planRecordOf(plan), ...(await this.credentialed(identity, runbookOf(built, plan.chosen))) };
  }

  /**
   * The owner's credential for every site the runbook may use, resolved now while their token is
   * at hand; none for a chosen site is the caller's error, and an alternate without one is simply
   * not one.
   */
  private async credentialed(identity: Identity, chosenBook: ThreadRunbook): Promise<Pick<Planned, 'book' | 'credentials'>> {
    const chosenSites = new Set([chosenBook.left.site, chosenBook.right.site]);
    const sites = new Set([...chosenSites, ...chosenBook.alternates.left.map((t) => t.site), ...chosenBook.alternates.right.map((t) => t.site)]);
    const probe: QueryCandidate[] = [...sites].map((siteId) => ({ kind: 'QUERY', siteId, siteQuery: { adql: 'SELECT 1', service: '', mode: 'sync' } }));
    const resolved = await credentialedCandidates(this.sources.config, identity, probe, { db: this.pool, issuer: this.sources.issuer, keys: this.sources.keys });
    const refused = resolved.refusals.filter((r) => chosenSites.has(r.siteId));
    if (refused.length > 0) {
      throw new ConstellationError(refused[0].kind, `this cross-match cannot run with your credentials: ${refused.map((r) => r.message).join('; ')}`);
    }
    const without = new Set(resolved.refusals.map((r) => r.siteId));
    const book: ThreadRunbook = {
      ...chosenBook,
      alternates: { left: chosenBook.alternates.left.filter((t) => !without.has(t.site)), right: chosenBook.alternates.right.filter((t) => !without.has(t.site)) },
    };
    return { book, credentials: resolved.credentials };
  }

  /**
   * Record a planned thread with its provenance ground (the broker version, each runbook site's
   * current capability document) and its owner's credentials sealed, then run it.
   */
  private async record(owner: string, request: CrossmatchInput, planned: Planned, link: { idempotencyKey?: string; rerunOf?: string }): Promise<{ thread: ThreadRow; created: boolean }> {
    const { book, credentials } = planned;
    const id = randomUUID();
    const sites = [...new Set([book.left.site, book.right.site, ...book.alternates.left.map((t) => t.site), ...book.alternates.right.map((t) => t.site)])];
    const made = await createThreadOnce(this.pool, {
      id, owner, request, plan: planned.plan, runbook: book, steps: stepsOf(book),
      ...(link.idempotencyKey !== undefined ? { idempotencyKey: link.idempotencyKey } : {}),
      ...(link.rerunOf !== undefined ? { rerunOf: link.rerunOf } : {}),
      brokerVersion: brokerVersion(),
      documents: await currentDocuments(this.pool, sites),
      credentials: sealThreadCredentials(this.sources.keys, id, credentials),
    });
    if (!made.created) return made;
    this.credentials.set(made.thread.id, credentials);
    this.emit(made.thread);
    this.kick(made.thread.id);
    return made;
  }

  /** The thread, if `owner` owns it. */
  async get(id: string, owner: string): Promise<ThreadRow | undefined> {
    const t = await threadById(this.pool, id);
    return t && t.owner === owner ? t : undefined;
  }

  /** An owner's threads, newest first. */
  list(owner: string, filter: { states?: readonly ThreadState[]; limit: number; offset: number }): Promise<ThreadRow[]> {
    return threadsByOwner(this.pool, owner, filter);
  }

  /** The provenance of `owner`'s thread `id` (NOT_FOUND for anyone else, as for a thread that does not exist). */
  async provenance(id: string, owner: string): Promise<ThreadProvenance> {
    const thread = await this.get(id, owner);
    if (!thread) throw new ConstellationError('NOT_FOUND', `no thread ${id}`);
    const steps = await threadSteps(this.pool, id);
    const jobs = new Map<string, JobRow>();
    for (const s of steps) {
      if (!s.jobId) continue;
      const job = await this.jobs.get(s.jobId);
      if (job) jobs.set(job.id, job);
    }
    return threadProvenance(thread, steps, jobs);
  }

  /** A re-run compared with the thread it re-runs (null when `thread` is no re-run, or the original is gone). */
  async differences(thread: ThreadRow): Promise<ThreadDifferences | null> {
    if (thread.rerunOf === null) return null;
    const original = await threadById(this.pool, thread.rerunOf);
    if (!original) return null;
    return differencesOf(original, await threadSteps(this.pool, original.id), thread, await threadSteps(this.pool, thread.id));
  }

  /** A thread's steps, by ordinal. */
  steps(id: string): Promise<ThreadStepRow[]> {
    return threadSteps(this.pool, id);
  }

  /** Steps done of all, and rows and bytes the steps moved so far. */
  async progress(id: string): Promise<ThreadProgress> {
    const steps = await threadSteps(this.pool, id);
    let rows = 0;
    let bytes = 0;
    for (const s of steps) {
      rows += s.rowsOut ?? 0;
      bytes += (s.bytesIn ?? 0) + (s.bytesOut ?? 0);
    }
    return { stepsDone: steps.filter((s) => s.state === 'COMPLETED').length, stepsTotal: steps.length, rows, bytes };
  }

  /**
   * Cancel a running thread: it is ABORTED and every step job still running is cancelled at its
   * site. A finished thread is INVALID_ARGUMENT (it has nothing left to cancel).
   */
  async cancel(id: string, owner: string): Promise<ThreadRow> {
    const thread = await this.get(id, owner);
    if (!thread) throw new ConstellationError('NOT_FOUND', `no thread ${id}`);
    if (isFinished(thread.state)) {
      throw new ConstellationError('INVALID_ARGUMENT', `thread ${id} is already ${thread.state}; only a queued or running thread can be cancelled`, {
        violations: [{ path: 'id', rule: 'finished', message: `thread ${id} is ${thread.state}` }],
      });
    }
    const ended = await finishThread(this.pool, id, { state: 'ABORTED', errorCode: null, errorMessage: 'cancelled by the owner' });
    await forgetThreadCredentials(this.pool, id);
    for (const step of await threadSteps(this.pool, id)) {
      if (step.state === 'COMPLETED') continue;
      if (step.jobId) {
        const job = await this.jobs.get(step.jobId);
        if (job && !isTerminal(job.state)) await this.jobs.cancel(step.jobId);
      }
      await updateThreadStep(this.pool, id, step.ordinal, { state: 'ABORTED' });
    }
    const now = ended ?? (await threadById(this.pool, id));
    if (!now) throw new ConstellationError('NOT_FOUND', `no thread ${id}`);
    this.emit(now);
    return now;
  }

  /** Remove result files past `retentionMs` (results.retentionDays); returns how many. Any broker may; it is idempotent. */
  async expireResults(retentionMs: number): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch = await threadResultsExpired(this.pool, retentionMs, 100);
      for (const { id, path } of batch) {
        await rm(path, { force: true });
        await forgetThreadResult(this.pool, id);
        removed++;
      }
      if (batch.length < 100) return removed;
    }
  }

  /** Drive every unfinished thread nobody drives, now and every sweep. */
  async startLoop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stop the sweep and wait for the threads this broker drives to reach a pause. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.stopping.abort(new ConstellationError('INTERNAL', 'the broker is stopping'));
    await Promise.allSettled([...this.driving.values()]);
  }

  /** Wait until this broker has stopped driving `id` (tests, and callers that want the result now). */
  async settled(id: string): Promise<void> {
    await this.driving.get(id);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.sweep(), ms);
  }

  private async sweep(): Promise<void> {
    try {
      for (const id of await threadsDue(this.pool, 20)) this.kick(id);
    } catch (err) {
      this.options.onError?.(err);
    }
    this.schedule(this.sweepMs);
  }

  private kick(id: string): void {
    if (this.driving.has(id)) return;
    const run = this.drive(id)
      .catch((err) => this.options.onError?.(err))
      .finally(() => this.driving.delete(id));
    this.driving.set(id, run);
  }

  private emit(thread: ThreadRow): void {
    this.listeners.emit(thread);
  }

  private async changed(id: string): Promise<void> {
    const t = await touchThread(this.pool, id);
    if (t) this.emit(t);
  }

  /** Claim the thread, run its steps (keeping the lease), then write its result or say which tiles are missing. */
  private async drive(id: string): Promise<void> {
    const thread = await claimThread(this.pool, id, this.brokerId, this.leaseMs);
    if (!thread) return;
    this.emit(thread);
    if (!thread.record.intact) {
      await this.end(id, { state: 'ERROR', errorCode: thread.record.error.code, errorMessage: thread.record.error.message });
      return;
    }
    const book = thread.record.runbook;
    const lost = new AbortController();
    const stopped = () => lost.abort(this.stopping.signal.reason);
    this.stopping.signal.addEventListener('abort', stopped, { once: true });
    const renew = setInterval(() => {
      claimThread(this.pool, id, this.brokerId, this.leaseMs).then((t) => {
        if (!t) lost.abort(new ConstellationError('INTERNAL', `thread ${id} is no longer driven here`));
      }, (err) => this.options.onError?.(err));
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
    try {
      const failures = await this.runTiles(thread, book, lost.signal);
      if (lost.signal.aborted) return;
      if (failures.length > 0) {
        const steps = await threadSteps(this.pool, id);
        const missing = tilesOf(book).filter((t) => steps.some((s) => sameTile(s, t) && s.kind !== 'match' && s.state !== 'COMPLETED'));
        const why = failures.map((f) => `step ${f.step.ordinal} (${f.step.kind} at ${f.step.siteId ?? 'the broker'}, ${tileName(f.step)}): ${f.message}`).join('; ');
        await this.end(id, {
          state: 'ERROR',
          errorCode: failures[0].code,
          errorMessage: `${missing.length} of ${book.tiles.cells.length} tiles are missing (${missing.map((t) => tileName({ tileOrder: t.order, tileCell: t.cell })).join(', ')}), so no result was written: ${why}`,
        });
        return;
      }
      const result = await this.assemble(thread, book, lost.signal);
      await this.end(id, { state: 'COMPLETED', ...result });
    } catch (err) {
      if (lost.signal.aborted) return;
      await this.end(id, { state: 'ERROR', errorCode: isConstellationError(err) ? err.code : ErrorCodes.INTERNAL.code, errorMessage: err instanceof Error ? err.message : String(err) });
    } finally {
      clearInterval(renew);
      this.stopping.signal.removeEventListener('abort', stopped);
      // Stopping: the thread is left for another broker (or this one restarted) at once, not after the lease.
      if (this.stopping.signal.aborted) await releaseThread(this.pool, id, this.brokerId);
      else this.credentials.delete(id);
    }
  }

  private async end(id: string, end: Parameters<typeof finishThread>[2]): Promise<void> {
    const t = await finishThread(this.pool, id, end);
    // Nothing more is submitted for a finished thread: its kept credentials go.
    await forgetThreadCredentials(this.pool, id);
    if (t) this.emit(t);
  }

  /** Run every tile's site steps, at most maxParallel tiles at once; stops starting tiles after a failure. Returns the failures. */
  private async runTiles(thread: ThreadRow, book: ThreadRunbook, signal: AbortSignal): Promise<StepFailed[]> {
    const steps = await threadSteps(this.pool, thread.id);
    const tiles = tilesOf(book);
    const failures: StepFailed[] = [];
    let next = 0;
    const worker = async () => {
      while (next < tiles.length && failures.length === 0 && !signal.aborted) {
        const tile = tiles[next++];
        try {
          await this.runTile(thread, book, tile, steps.filter((s) => s.kind !== 'match' && sameTile(s, tile)), signal);
        } catch (err) {
          if (err instanceof StepFailed) failures.push(err);
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.options.maxParallel, tiles.length)) }, worker));
    return failures;
  }

  private async runTile(thread: ThreadRow, book: ThreadRunbook, tile: Tile, steps: ThreadStepRow[], signal: AbortSignal): Promise<void> {
    if (book.strategy === 'SAME_SITE') {
      await this.runStep(thread, steps[0], () => [joinQuery(book, tile)], signal);
      return;
    }
    if (book.strategy === 'BROKER') {
      await Promise.all(steps.map((s) => this.runStep(thread, s, () => readQueries(book, tile, readSide(book, s)), signal)));
      return;
    }
    const [read, joinStep] = steps;
    const readJob = await this.runStep(thread, read, () => readQueries(book, tile, readSide(book, read)), signal);
    if (joinStep.state === 'COMPLETED') return;
    const table = await this.stepTable(readJob, signal);
    const upload = await uploadTable(book, tile, table, readJob.siteId);
    await updateThreadStep(this.pool, thread.id, read.ordinal, { rowsOut: table.rows.length, bytesIn: table.bytes });
    await setStepChecksum(this.pool, thread.id, read.ordinal, checksumOf(table.rows));
    await updateThreadStep(this.pool, thread.id, joinStep.ordinal, { rowsIn: upload.rows, bytesOut: Buffer.byteLength(upload.votable) });
    await this.runStep(thread, joinStep, () => [uploadJoinQuery(book, tile, upload.votable)], signal);
  }

  /**
   * Run one site step as a job, created under the thread's and step's key (a resumed thread finds
   * the job it made), and wait for its end. COMPLETED returns the job; anything else is StepFailed.
   */
  private async runStep(thread: ThreadRow, step: ThreadStepRow, candidates: () => QueryCandidate[], signal: AbortSignal): Promise<JobRow> {
    if (step.state === 'COMPLETED' && step.jobId) {
      const done = await this.jobs.get(step.jobId);
      if (done?.state === 'COMPLETED') return done;
    }
    const list = candidates();
    const sites = new Set(list.map((c) => c.siteId));
    const credentials = await this.credentialsOf(thread.id);
    const mine = new Map([...credentials].filter(([site]) => sites.has(site)));
    let job = await untilAborted(signal, this.jobs.submit({
      kind: 'QUERY',
      owner: thread.owner,
      idempotencyKey: `thread:${thread.id}:step:${step.ordinal}`,
      request: { thread: thread.id, step: step.ordinal },
      candidates: list,
      beforeDispatch: async (created) => {
        await keepJobCredentials(this.pool, this.sources.keys, created.id, mine);
        await updateThreadStep(this.pool, thread.id, step.ordinal, { jobId: created.id, siteId: list[0].siteId, state: 'RUNNING' });
        await this.changed(thread.id);
      },
    }));
    if (step.jobId !== job.id) await updateThreadStep(this.pool, thread.id, step.ordinal, { jobId: job.id, siteId: job.siteId ?? list[0].siteId, state: 'RUNNING' });
    job = await this.finished(job, signal);
    if (job.state === 'COMPLETED') {
      await updateThreadStep(this.pool, thread.id, step.ordinal, { state: 'COMPLETED', siteId: job.siteId });
      await this.changed(thread.id);
      return job;
    }
    const code = job.errorCode ?? ErrorCodes.UPSTREAM.code;
    const message = job.errorMessage ?? `the step's job ${job.id} ended ${job.state}`;
    await updateThreadStep(this.pool, thread.id, step.ordinal, { state: job.state === 'ABORTED' ? 'ABORTED' : 'ERROR', errorCode: code, errorMessage: message });
    await this.changed(thread.id);
    throw new StepFailed(step, code, message);
  }

  /** The owner's credentials for a thread: resolved here at start, else those kept with the thread (a thread taken over). */
  private async credentialsOf(threadId: string): Promise<ReadonlyMap<string, UserSiteCredential>> {
    const held = this.credentials.get(threadId);
    if (held) return held;
    const kept = await keptThreadCredentials(this.pool, this.sources.keys, threadId);
    this.credentials.set(threadId, kept);
    return kept;
  }

  /** The job once it has ended (followed through the job service's updates, re-read every second in case one was missed). */
  private async finished(job: JobRow, signal: AbortSignal): Promise<JobRow> {
    let current = job;
    while (!isTerminal(current.state)) {
      if (signal.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        const off = this.jobs.onUpdate((u) => {
          if (u.job.id === job.id) done();
        });
        signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          off();
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
      current = (await this.jobs.get(job.id)) ?? current;
    }
    return current;
  }

  private async stepTable(job: JobRow, signal: AbortSignal): Promise<StepTable> {
    const result = await this.jobs.result(job, signal);
    return readStepTable(result.body);
  }

  /** Every step completed: make each tile's pairs from the kept results and write the result file. */
  private async assemble(thread: ThreadRow, book: ThreadRunbook, signal: AbortSignal): Promise<{ resultPath: string; resultRows: number; resultBytes: number }> {
    const steps = await threadSteps(this.pool, thread.id);
    const jobOf = async (s: ThreadStepRow): Promise<JobRow> => {
      const job = s.jobId ? await this.jobs.get(s.jobId) : undefined;
      if (!job || job.state !== 'COMPLETED') throw new ConstellationError('INTERNAL', `step ${s.ordinal} of thread ${thread.id} has no completed job`);
      return job;
    };
    const matchStep = steps.find((s) => s.kind === 'match');
    let matchIn = 0;
    let matchOut = 0;
    const self = this;
    async function* tiles(): AsyncIterable<TilePairs> {
      for (const tile of tilesOf(book)) {
        const own = steps.filter((s) => s.kind !== 'match' && sameTile(s, tile));
        if (book.strategy === 'BROKER') {
          const [l, r] = own;
          const left = await self.stepTable(await jobOf(l), signal);
          const right = await self.stepTable(await jobOf(r), signal);
          await updateThreadStep(self.pool, thread.id, l.ordinal, { rowsOut: left.rows.length, bytesIn: left.bytes });
          await updateThreadStep(self.pool, thread.id, r.ordinal, { rowsOut: right.rows.length, bytesIn: right.bytes });
          await setStepChecksum(self.pool, thread.id, l.ordinal, checksumOf(left.rows));
          await setStepChecksum(self.pool, thread.id, r.ordinal, checksumOf(right.rows));
          const pairs = await brokerPairs(book, tile, left, right, { leftSite: (await jobOf(l)).siteId, rightSite: (await jobOf(r)).siteId }, { memoryMb: self.options.memoryMb, spillDir: join(self.options.resultDir, 'spill'), signal });
          matchIn += pairs.leftRows + pairs.rightRows;
          matchOut += pairs.rows.length;
          yield pairs;
        } else {
          const joinStep = own[own.length - 1];
          const table = await self.stepTable(await jobOf(joinStep), signal);
          await updateThreadStep(self.pool, thread.id, joinStep.ordinal, { rowsOut: table.rows.length, bytesIn: table.bytes });
          await setStepChecksum(self.pool, thread.id, joinStep.ordinal, checksumOf(table.rows));
          yield joinPairs(book, tile, table);
        }
      }
    }
    const path = join(this.options.resultDir, `${thread.id}.vot`);
    if (matchStep) await updateThreadStep(this.pool, thread.id, matchStep.ordinal, { state: 'RUNNING' });
    const written = await writeResultFile(path, tiles());
    if (matchStep) {
      await updateThreadStep(this.pool, thread.id, matchStep.ordinal, { state: 'COMPLETED', rowsIn: matchIn, rowsOut: matchOut });
      await setStepChecksum(this.pool, thread.id, matchStep.ordinal, written.checksum);
    }
    await setResultChecksum(this.pool, thread.id, written.checksum);
    return { resultPath: path, resultRows: written.rows, resultBytes: written.bytes };
  }
}

/**
 * `work`, unless `signal` aborts first (then its reason is thrown and `work` goes on alone: a job
 * submit that the job service finishes, or leaves for the next broker, when it stops).
 */
function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

function isFinished(state: ThreadState): boolean {
  return state === 'COMPLETED' || state === 'ERROR' || state === 'ABORTED';
}

function sameTile(s: Pick<ThreadStepRow, 'tileOrder' | 'tileCell'>, t: Tile): boolean {
  return s.tileOrder === t.order && s.tileCell === t.cell;
}

function tileName(s: Pick<ThreadStepRow, 'tileOrder' | 'tileCell'>): string {
  return s.tileOrder === null ? 'the whole region' : `tile ${s.tileOrder}/${s.tileCell}`;
}

/** What the thread keeps of the plan: every candidate, and the index of the chosen one. */
function planRecordOf(plan: CrossmatchPlan): ThreadPlanRecord {
  const chosen = plan.chosen === null ? -1 : plan.candidates.indexOf(plan.chosen);
  return { chosen, candidates: plan.candidates, forced: plan.forced, formula: plan.formula, callerSite: plan.callerSite };
}

/** NO_ELIGIBLE_SITE with one violation per strategy considered: its reasons, with estimated rows against each limit. */
function refusal(plan: CrossmatchPlan): ConstellationError {
  const violations: Violation[] = [];
  for (const strategy of STRATEGIES) {
    if (plan.forced !== null && strategy !== plan.forced) continue;
    const reasons = plan.candidates.filter((c) => c.strategy === strategy).flatMap((c) => c.reasons);
    if (reasons.length === 0) continue;
    violations.push({ path: `strategy/${strategy}`, rule: [...new Set(reasons.map((r) => r.code))].join(','), message: reasons.map((r) => r.message).join('; ') });
  }
  const forced = plan.forced === null ? 'no strategy' : `the forced strategy ${plan.forced}`;
  return new ConstellationError('NO_ELIGIBLE_SITE', `${forced} can run this cross-match: ${violations.map((v) => `${v.path.slice(9)}: ${v.message}`).join(' | ')}`, { violations });
}

/**
 * A stored request read back as a CrossmatchInput, to plan again: only its shape is checked here
 * (buildSituation checks every value when it plans); its idempotency key is not carried over.
 */
function requestOf(raw: unknown): CrossmatchInput {
  const r = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? Object.fromEntries(Object.entries(raw)) : {};
  const side = (v: unknown): CrossmatchInput['left'] => {
    const o = v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v)) : {};
    const columns = Array.isArray(o.columns) ? o.columns.filter((c): c is string => typeof c === 'string') : [];
    return { dataset: typeof o.dataset === 'string' ? o.dataset : '', columns };
  };
  const region = r.region !== null && typeof r.region === 'object' ? Object.fromEntries(Object.entries(r.region)) : {};
  const cone = region.cone !== null && typeof region.cone === 'object' ? Object.fromEntries(Object.entries(region.cone)) : null;
  const num = (v: unknown) => (typeof v === 'number' ? v : Number.NaN);
  return {
    left: side(r.left),
    right: side(r.right),
    region: {
      cone: cone ? { ra: num(cone.ra), dec: num(cone.dec), radiusDeg: num(cone.radiusDeg) } : null,
      moc: typeof region.moc === 'string' ? region.moc : null,
    },
    radiusArcsec: num(r.radiusArcsec),
    mode: r.mode === 'ALL' ? 'ALL' : r.mode === 'BEST' ? 'BEST' : null,
    strategy: r.strategy === 'SAME_SITE' || r.strategy === 'UPLOAD' || r.strategy === 'BROKER' ? r.strategy : null,
    sites: Array.isArray(r.sites) ? r.sites.filter((x): x is string => typeof x === 'string') : null,
  };
}

/** `thread` when it was created for `request`; otherwise the key was reused for another request. */
function sameRequest(thread: ThreadRow, request: unknown): ThreadRow {
  if (stableJson(thread.request) === stableJson(request)) return thread;
  throw new ConstellationError(
    'INVALID_ARGUMENT',
    `idempotencyKey "${thread.idempotencyKey}" was already used for a different request (thread ${thread.id}); use a new key for a new request`,
    { violations: [{ path: 'input.idempotencyKey', rule: 'idempotency', message: `already names thread ${thread.id}` }] },
  );
}

// jsonb does not keep key order, and GraphQL leaves absent fields out: compare with keys sorted and nulls dropped.
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
