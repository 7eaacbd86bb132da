/**
 * Running jobs at member sites: create once (idempotency key), submit to the plan's
 * candidates in order (failing over when a site will not take the job), poll every unfinished
 * job under a lease (so replicas never poll one job twice and a restarted broker resumes),
 * cancel at the site, and tell subscribers about every transition.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { UpstreamError } from '../../adapters/http.js';
import type { AdapterContext, SiteJobStatus, SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError, ErrorCodes, isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { isJobKind, submittedCandidate, type JobCandidate, type PlanRecord } from '../../registry/model/job-plan.js';
import {
  claimDueJobs, clearSubmission, createJobOnce, jobById, jobByIdempotencyKey, jobEvents, jobsByOwner, makeUnfinishedJobsDue, markSubmitting, recordJobEvent,
  recordPollAnswer, recordPollUnreachable, recordSubmitFailure, releaseJobLease, renewSubmitLease, transition,
  type JobEventRow, type JobKind, type JobRow,
} from '../../registry/store/queries/jobs.js';
import { expireJobResults } from '../../registry/store/queries/job-results.js';
import { kindOf, type LostSubmit, type SiteSubmission } from './kinds/index.js';
import type { JobScope, SiteBinding, SiteResolver } from './site-binding.js';
import { currentCandidate } from './plan.js';
import { keepResult, keptResult } from './result-store.js';
import { siteVotable } from './results.js';
import { isTerminal, legalFrom, stateFromSite, type JobState } from './state.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SUBMIT_TIMEOUT_MS, LEASE_MARGIN_MS } from './timings.js';
import { Listeners } from '../services/listeners.js';
import { deadlineSignal } from '../deadline.js';

/** What `JobService.submit` takes. */
export interface SubmitJobInput {
  kind: JobKind;
  /** The caller; "anonymous" until identities are wired. */
  owner?: string;
  /** A retried submit with the same key (per owner) returns the same job and submits nothing. */
  idempotencyKey?: string;
  /** The request as the caller gave it (kept for the job's record). */
  request: unknown;
  /**
   * Candidates in the order to try them: each a site and what it runs (siteQuery for QUERY,
   * siteJob for CONTAINER), checked against `kind` here (INVALID_ARGUMENT naming the candidate).
   */
  candidates: readonly CandidateInput[];
  /** The planner's record of the plan, kept beside the candidates. */
  plan?: PlanRecord;
  /**
   * Called once with the new job's row before it is sent anywhere (not for a retried submit):
   * where the submitter's site credentials are kept, so whichever broker polls the job has them.
   */
  beforeDispatch?: (job: JobRow) => Promise<void>;
}

/** A candidate as handed to submit, before it is checked against the job's kind (a typed JobCandidate is one). */
export interface CandidateInput {
  siteId: string;
  siteQuery?: unknown;
  siteJob?: unknown;
}

/** A change to a job: the row after it and the history line that records it. */
export interface JobUpdate {
  job: JobRow;
  event?: JobEventRow;
}

export interface JobServiceOptions {
  /** Identifies this broker in leases (default: a random id per service). */
  brokerId?: string;
  /** Time between polls of one job while its site answers (default 2 s). */
  pollIntervalMs?: number;
  /** How often the loop looks for due jobs (default: the poll interval, at most 1 s). */
  tickMs?: number;
  /**
   * How long a poll claim lasts; a broker that dies holding one frees it after this. It always
   * outlasts the poll it covers: default requestTimeoutMs + LEASE_MARGIN_MS; a shorter one is refused.
   */
  leaseMs?: number;
  /** Jobs claimed per tick (default 20). */
  batchSize?: number;
  /** Longest time one poll of a site may take, every request of it included (default 28 s, or leaseMs − LEASE_MARGIN_MS when only leaseMs is given). */
  requestTimeoutMs?: number;
  /**
   * Longest time a submit may take, a synchronous query's whole answer included (default 40 s:
   * the HTTP client's connect and headers timeouts). A broker that dies mid-submit leaves the
   * job to another after this plus LEASE_MARGIN_MS.
   */
  submitTimeoutMs?: number;
  /** Largest synchronous result kept for /results (default 64 MiB); a larger one fails that site's submit with UPSTREAM_TOO_LARGE. */
  resultMaxBytes?: number;
  /** How long a kept result is served (default 7 days); then RESULT_EXPIRED. */
  resultRetentionMs?: number;
  /** How long /results waits for a site's first byte before UPSTREAM_TIMEOUT (default 15 s). */
  resultFirstByteMs?: number;
  /** First and longest wait between polls of a site that does not answer (default 2 s, 5 min). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Fail a job whose site has been unreachable this long (default: never; the job says so meanwhile). */
  giveUpAfterMs?: number;
  /** Called with errors the loop cannot attach to a job (the database is down, say). */
  onError?: (err: unknown) => void;
}

// While polling, these say "cannot ask the site now", not "the job failed".
const TRANSIENT_KINDS: ReadonlySet<ErrorKind> = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_RATE_LIMITED', 'UPSTREAM_MALFORMED']);

/** The site cannot be asked now (down, slow, rate limiting, a 5xx), as opposed to "the job failed". */
function isTransient(err: unknown): boolean {
  return (isConstellationError(err) && TRANSIENT_KINDS.has(err.kind)) || (err instanceof UpstreamError && err.retryable);
}

function errorCode(err: unknown): string {
  return isConstellationError(err) ? err.code : ErrorCodes.INTERNAL.code;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An error's text, with what to do when the site refused the credential. */
function siteErrorText(err: unknown, site: SiteBinding | undefined): string {
  const text = errorText(err);
  return site?.authAdvice && isConstellationError(err) && err.kind === 'UPSTREAM_AUTH' ? `${text}; ${site.authAdvice}` : text;
}

const RESULT_CHUNK_BYTES = 1024 * 1024;

/** How often a site is asked for a job a failed submit may have made there (or to drop one), and the pause before the second ask, doubling. */
const LOOKUP_ATTEMPTS = 3;
const LOOKUP_BACKOFF_MS = 500;

/** Submits, polls and cancels jobs; one per broker process. */
export class JobService {
  readonly brokerId: string;
  private readonly opts: Required<Omit<JobServiceOptions, 'giveUpAfterMs' | 'onError' | 'brokerId' | 'tickMs'>> & { tickMs: number };
  /** How long /results waits for a site's first byte. */
  readonly resultFirstByteMs: number;
  private readonly listeners: Listeners<JobUpdate>;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<unknown> | undefined;
  private wakeAgain = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Jobs this broker is submitting now: a claim of one (its lease read as lapsed) must not start a second submit. */
  private readonly submitting = new Set<string>();
  private running = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly resolveSite: SiteResolver,
    private readonly options: JobServiceOptions = {},
  ) {
    this.brokerId = options.brokerId ?? `broker-${randomUUID()}`;
    const pollIntervalMs = options.pollIntervalMs ?? 2000;
    const { leaseMs, requestTimeoutMs } = pollTimings(options.leaseMs, options.requestTimeoutMs);
    this.opts = {
      pollIntervalMs,
      tickMs: options.tickMs ?? Math.min(pollIntervalMs, 1000),
      leaseMs,
      batchSize: options.batchSize ?? 20,
      requestTimeoutMs,
      submitTimeoutMs: options.submitTimeoutMs ?? DEFAULT_SUBMIT_TIMEOUT_MS,
      backoffBaseMs: options.backoffBaseMs ?? 2000,
      backoffMaxMs: options.backoffMaxMs ?? 300_000,
      resultMaxBytes: options.resultMaxBytes ?? 64 * 1024 * 1024,
      resultRetentionMs: options.resultRetentionMs ?? 7 * 86_400_000,
      resultFirstByteMs: options.resultFirstByteMs ?? 15_000,
    };
    this.resultFirstByteMs = this.opts.resultFirstByteMs;
    this.listeners = new Listeners((err) => this.options.onError?.(err));
  }

  /** Call `listener` after every change to any job; returns the unsubscribe function. */
  onUpdate(listener: (update: JobUpdate) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * Create the job once and submit it to its candidates in order. A retried call with the
   * same idempotency key returns the stored job as it is now and submits nothing.
   */
  async submit(input: SubmitJobInput): Promise<JobRow> {
    const candidates = checkedCandidates(input);
    const owner = input.owner ?? 'anonymous';
    const { job, created } = await createJobOnce(
      this.pool,
      { id: randomUUID(), owner, kind: input.kind, request: input.request, plan: { candidates, record: input.plan ?? null }, idempotencyKey: input.idempotencyKey },
      { owner: this.brokerId, ms: this.submitLeaseMs() },
    );
    if (!created) return sameRequest(job, input.request);
    if (input.beforeDispatch) {
      try {
        await input.beforeDispatch(job);
      } catch (err) {
        await this.fail(job, errorCode(err), errorText(err));
        throw err;
      }
    }
    this.emit({ job });
    return this.dispatch(job);
  }

  /**
   * The owner's job already created under `key`, when there is one: the same job for the same
   * request, an error for a different one (a key names one request, never two).
   */
  async existing(owner: string, key: string | undefined, request: unknown): Promise<JobRow | undefined> {
    if (key === undefined) return undefined;
    const job = await jobByIdempotencyKey(this.pool, owner, key);
    return job && sameRequest(job, request);
  }

  /** The job, if `owner` (when given) owns it. */
  async get(id: string, owner?: string): Promise<JobRow | undefined> {
    const job = await jobById(this.pool, id);
    return job && (owner === undefined || job.owner === owner) ? job : undefined;
  }

  /** An owner's jobs (every owner's when `owner` is null), newest first. */
  list(owner: string | null, filter: Parameters<typeof jobsByOwner>[2] = {}): Promise<JobRow[]> {
    return jobsByOwner(this.pool, owner, filter);
  }

  /** A job's history, oldest first. */
  history(id: string): Promise<JobEventRow[]> {
    return jobEvents(this.pool, id);
  }

  /**
   * Cancel a job: the site is asked to abort it first, then the job is ABORTED. A finished
   * job is returned unchanged; a site that cannot be reached fails the call and leaves the job as it is.
   */
  async cancel(id: string, owner?: string): Promise<JobRow> {
    const job = await this.get(id, owner);
    if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id}`);
    if (isTerminal(job.state)) return job;
    if (job.siteId && job.siteJobId) {
      const site = await this.resolveSite(job.siteId, this.scope(job));
      try {
        await site.adapter.cancelJob?.(this.context(site, this.opts.requestTimeoutMs), job.siteJobId);
      } catch (err) {
        // Marking it ABORTED here would leave it running at the site unwatched; the caller retries.
        if (!isConstellationError(err)) throw err;
        throw new ConstellationError(err.kind, `could not ask ${job.siteId} to abort job ${id}, so it is still ${job.state}; try again: ${siteErrorText(err, site)}`, { cause: err });
      }
    }
    const moved = await transition(this.pool, id, 'ABORTED', { legalFrom: legalFrom('ABORTED'), message: 'cancelled by the owner' });
    if (!moved) return this.reread(id);
    this.emit(moved);
    return moved.job;
  }

  /** Claim the jobs due now and poll each once, waiting for the polls; returns how many were claimed. */
  async pollOnce(): Promise<number> {
    const started = await this.claimAndPoll();
    await Promise.all(started);
    return started.length;
  }

  /** Resume every unfinished job now, then poll in a loop until `stop()`. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await makeUnfinishedJobsDue(this.pool);
    this.schedule(0);
  }

  /** Stop the loop, abandon calls in flight and wait for them to end. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.stopping.abort();
    await this.claiming?.catch(() => {});
    await Promise.all(this.inFlight);
  }

  /**
   * Claim as many due jobs as there is room for and start polling each. Polls run on their own
   * (a site holding its answer with UWS WAIT must not hold up the others); the lease keeps any
   * other broker off a job while it is polled here.
   */
  private async claimAndPoll(): Promise<Promise<void>[]> {
    const room = this.opts.batchSize - this.inFlight.size;
    if (room <= 0) return [];
    const claimed = await claimDueJobs(this.pool, this.brokerId, room, this.opts.leaseMs);
    // A job still being submitted here was claimed because its lease looked lapsed; the claim renewed it, and the submit goes on.
    const jobs = claimed.filter((job) => !this.submitting.has(job.id));
    return jobs.map((job) => {
      const poll: Promise<void> = this.pollJob(job)
        .catch((err) => this.options.onError?.(err))
        .finally(() => this.inFlight.delete(poll));
      this.inFlight.add(poll);
      return poll;
    });
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    if (this.claiming) {
      this.wakeAgain = true;
      return;
    }
    this.claiming = this.claimAndPoll()
      .catch((err) => this.options.onError?.(err))
      .finally(() => {
        this.claiming = undefined;
        const again = this.wakeAgain;
        this.wakeAgain = false;
        this.schedule(again ? 0 : this.opts.tickMs);
      });
  }

  /** A job was just made due (submitted, or its state changed): look for it now, not at the next tick. */
  private wake(): void {
    this.schedule(0);
  }

  /**
   * The result of a COMPLETED job. A synchronous query's result was kept by the broker when the
   * query ran and is served from the database, by any broker, until it expires (RESULT_EXPIRED,
   * never a silent second run); an async job's result is streamed from its site.
   */
  async result(job: JobRow, signal?: AbortSignal): Promise<SiteResult> {
    if (!job.siteId || !job.siteJobId) throw new ConstellationError('NOT_FOUND', `job ${job.id} has not been placed at a site`);
    const candidate = currentCandidate(job);
    if (candidate && kindOf(candidate.kind).resultKept(candidate)) return keptResult(this.pool, job);
    const site = await this.resolveSite(job.siteId, this.scope(job));
    if (!site.adapter.jobResult) {
      throw new ConstellationError('NOT_FOUND', `job ${job.id} at ${job.siteId} has no result to fetch (${kindOf(job.kind).noResult})`);
    }
    try {
      return await site.adapter.jobResult({ ...site.context, ...(signal ? { signal } : {}) }, job.siteJobId);
    } catch (err) {
      if (!isConstellationError(err) || err.kind !== 'UPSTREAM_AUTH') throw err;
      throw new ConstellationError(err.kind, `${job.siteId}: ${siteErrorText(err, site)}`, { cause: err });
    }
  }

  /**
   * A submit interrupted by stop(): its lease is released so another broker resumes the job now
   * (it finds the submit time recorded and asks the site what it holds, as after a crash).
   */
  private async leftForAnother(id: string): Promise<JobRow> {
    await releaseJobLease(this.pool, id, this.brokerId);
    return this.reread(id);
  }

  /** The job as it is now, after a write that did not apply (someone else moved it meanwhile). */
  private async reread(id: string): Promise<JobRow> {
    const job = await jobById(this.pool, id);
    if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id}`);
    return job;
  }

  /** The job a site call is for, with the database its kept credentials are in. */
  private scope(job: Pick<JobRow, 'id' | 'owner'>): JobScope {
    return { id: job.id, owner: job.owner, db: this.pool };
  }

  /** Remove kept results past their retention (and writes a dead broker left unfinished); returns how many. */
  expireResults(): Promise<number> {
    return expireJobResults(this.pool, this.opts.submitTimeoutMs + LEASE_MARGIN_MS);
  }

  /** A context for one call: the site's, with a deadline and the service's stop signal. */
  context(site: SiteBinding, timeoutMs: number): AdapterContext {
    return { ...site.context, signal: deadlineSignal(timeoutMs, this.stopping.signal, site.context.signal) };
  }

  /** A submit's lease: its deadline, plus the margin to record what the site said. */
  private submitLeaseMs(): number {
    return this.opts.submitTimeoutMs + LEASE_MARGIN_MS;
  }

  private emit(update: JobUpdate): void {
    this.listeners.emit(update);
  }

  /**
   * Submit the job, once at a time here, renewing its submit lease while the submit runs (a
   * submit outlives its lease only when the machine stalls; another broker then takes it over,
   * and the kept-answer guards in job-results.ts keep the two apart).
   */
  private async dispatch(job: JobRow): Promise<JobRow> {
    if (this.submitting.has(job.id)) return this.reread(job.id);
    this.submitting.add(job.id);
    const leaseMs = this.submitLeaseMs();
    const renew = setInterval(() => {
      renewSubmitLease(this.pool, job.id, this.brokerId, leaseMs).catch((err) => this.options.onError?.(err));
    }, Math.max(50, Math.floor(leaseMs / 3)));
    try {
      return await this.tryCandidates(job);
    } finally {
      clearInterval(renew);
      this.submitting.delete(job.id);
    }
  }

  /** Try the candidates from the job's current index until one takes it. */
  private async tryCandidates(job: JobRow): Promise<JobRow> {
    const candidates = await this.plannedOrFail(job);
    if (!candidates) return this.reread(job.id);
    for (let i = job.candidateIndex; i < candidates.length; i++) {
      const candidate = candidates[i];
      let site: SiteBinding;
      try {
        site = await this.resolveSite(candidate.siteId, this.scope(job));
      } catch (err) {
        if (!(await this.submitFailed(job, i, candidate.siteId, err))) return this.reread(job.id);
        continue;
      }
      const marked = await markSubmitting(this.pool, job.id, i, candidate.siteId, { owner: this.brokerId, ms: this.submitLeaseMs() });
      // Cancelled (or taken over) while we were busy: nothing more to submit.
      if (!marked) return this.reread(job.id);
      let submitted: { siteJobId: string; status: SiteJobStatus };
      const ctx = this.context(site, this.opts.submitTimeoutMs);
      const kind = kindOf(candidate.kind);
      try {
        submitted = await kind.submit(site, ctx, candidate, job.id);
      } catch (err) {
        // Stopping is not the site's failure: the job is left for the next broker to resume, at once (not when the lease runs out).
        if (this.stopping.signal.aborted) return this.leftForAnother(job.id);
        // The site may have made the job though its answer was lost (a reset or stall after the
        // work): looked up by its run id before another site is asked, so it never runs unwatched.
        const lost = await this.lookUpLost(site, candidate, job.id, marked.submittedAt ?? new Date(), err);
        if (lost.outcome === 'found') return this.adopt(job, i, candidate.siteId, site, lost.submission, err);
        if (!(await this.submitFailed(job, i, candidate.siteId, lost.error, site))) return this.reread(job.id);
        continue;
      }
      try {
        // A synchronous answer is read whole and kept now, inside the submit's deadline and lease.
        if (kind.keepsAnswer(candidate, submitted.status)) await this.keep(ctx, site, job.id, submitted.siteJobId);
      } catch (err) {
        await site.adapter.cancelJob?.(ctx, submitted.siteJobId).catch((cancelErr) => this.options.onError?.(cancelErr));
        if (this.stopping.signal.aborted) return this.leftForAnother(job.id);
        if (!(await this.submitFailed(job, i, candidate.siteId, err, site))) return this.reread(job.id);
        continue;
      }
      const moved = await this.placed(job, i, candidate.siteId, submitted, `submitted to ${candidate.siteId} as ${submitted.siteJobId} (${submitted.status.sitePhase})`);
      if (!moved) {
        // Cancelled while the site was creating it: the site job must not run unowned.
        await this.dropUnrecorded(job.id, site, submitted.siteJobId);
        return this.reread(job.id);
      }
      return moved;
    }
    return this.failAll(job);
  }

  /**
   * After a failed submit: the job the site made anyway, found by its run id, or the error to
   * record (the submit's own, noting a lookup that failed too). A definite refusal (the site
   * said the query is wrong) is not looked up.
   */
  private async lookUpLost(site: SiteBinding, candidate: JobCandidate, runId: string, since: Date, err: unknown): Promise<{ outcome: 'found'; submission: SiteSubmission } | { outcome: 'not found'; error: unknown }> {
    if (!isTransient(err) && !(isConstellationError(err) && err.kind === 'UPSTREAM_MALFORMED')) return { outcome: 'not found', error: err };
    // Asked again while the site may get over it: a job left there unfound would run unwatched once another site is asked.
    for (let attempt = 1; ; attempt++) {
      try {
        const lost = await kindOf(candidate.kind).findLost(site, this.context(site, this.opts.requestTimeoutMs), candidate, runId, since);
        return lost.outcome === 'found' ? lost : { outcome: 'not found', error: err };
      } catch (lookupErr) {
        if (attempt < LOOKUP_ATTEMPTS && isTransient(lookupErr) && (await this.pause(LOOKUP_BACKOFF_MS * 2 ** (attempt - 1)))) continue;
        const kind = isConstellationError(err) ? err.kind : 'UPSTREAM';
        return { outcome: 'not found', error: new ConstellationError(kind, `${errorText(err)}; looking for the job there by its run id failed too: ${errorText(lookupErr)}`, { cause: err }) };
      }
    }
  }

  /** Waits `ms`; false when the service is stopping. */
  private async pause(ms: number): Promise<boolean> {
    if (this.stopping.signal.aborted) return false;
    return sleep(ms, true, { signal: this.stopping.signal }).catch(() => false);
  }

  /**
   * Ask the site to drop a job it made that this broker could not record (cancelled meanwhile),
   * trying again while the site may get over its failure. A job another broker recorded meanwhile
   * (it found it by its run id after this one's lease lapsed) is that broker's to follow: left alone.
   */
  private async dropUnrecorded(jobId: string, site: SiteBinding, siteJobId: string): Promise<void> {
    const now = await jobById(this.pool, jobId).catch((err: unknown) => {
      this.options.onError?.(err);
      return undefined;
    });
    if (now?.siteJobId === siteJobId) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await site.adapter.cancelJob?.(this.context(site, this.opts.requestTimeoutMs), siteJobId);
        return;
      } catch (err) {
        if (attempt < LOOKUP_ATTEMPTS && isTransient(err) && (await this.pause(LOOKUP_BACKOFF_MS * 2 ** (attempt - 1)))) continue;
        this.options.onError?.(err);
        return;
      }
    }
  }

  /** Place the job where a failed submit made it after all (followed there); a job cancelled meanwhile has that site job cancelled. */
  private async adopt(job: JobRow, candidateIndex: number, siteId: string, site: SiteBinding, submission: SiteSubmission, err: unknown): Promise<JobRow> {
    const moved = await this.placed(job, candidateIndex, siteId, submission, `the submit to ${siteId} failed (${siteErrorText(err, site)}), but it holds the job as ${submission.siteJobId} (${submission.status.sitePhase}), found by its run id`);
    if (moved) return moved;
    await this.dropUnrecorded(job.id, site, submission.siteJobId);
    return this.reread(job.id);
  }

  /**
   * Record that `siteId` holds the job as `held.siteJobId`; undefined when the job is no longer
   * PENDING (cancelled meanwhile). It is polled at once: with UWS WAIT the site holds that poll
   * until the job moves on.
   */
  private async placed(job: JobRow, candidateIndex: number, siteId: string, held: { siteJobId: string; status: SiteJobStatus }, message: string): Promise<JobRow | undefined> {
    const to = stateFromSite(held.status);
    const moved = await transition(this.pool, job.id, to, {
      legalFrom: ['PENDING'],
      // Not by a submitter whose lease another broker took: that one places the job.
      heldBy: this.brokerId,
      // The candidate it was placed with, even if a broker whose submit lease lapsed recorded another meanwhile.
      candidateIndex,
      siteId,
      siteJobId: held.siteJobId,
      sitePhase: held.status.sitePhase,
      ...(to === 'ERROR' ? { errorCode: ErrorCodes.UPSTREAM.code, errorMessage: `${siteId}: ${held.status.error ?? `the site reports ${held.status.sitePhase}`}` } : {}),
      message,
      pollDelayMs: 0,
    });
    if (!moved) return undefined;
    this.emit(moved);
    if (!isTerminal(to)) this.wake();
    return moved.job;
  }

  /** Read a synchronous answer from its site and keep it in the database (bounded, VOTable only). */
  private async keep(ctx: AdapterContext, site: SiteBinding, jobId: string, siteJobId: string): Promise<void> {
    if (!site.adapter.jobResult) throw new ConstellationError('INVALID_ARGUMENT', `site ${ctx.site.id} does not serve results`);
    const result = siteVotable(await site.adapter.jobResult(ctx, siteJobId), ctx.site.id);
    await keepResult(this.pool, jobId, result, { maxBytes: this.opts.resultMaxBytes, retentionMs: this.opts.resultRetentionMs, chunkBytes: RESULT_CHUNK_BYTES, site: ctx.site.id, broker: this.brokerId });
  }

  /**
   * Record a failed submit; returns false when the job is no longer ours to place (cancelled).
   * Every failure moves on: the query was checked before routing, so what one site refuses
   * (its dialect, its limits, its health) another may take. When none does, failAll names each.
   */
  private async submitFailed(job: JobRow, index: number, siteId: string, err: unknown, site?: SiteBinding): Promise<boolean> {
    const row = await recordSubmitFailure(this.pool, job.id, { candidateIndex: index, siteId, errorCode: errorCode(err), message: `${siteId}: ${siteErrorText(err, site)}`, broker: this.brokerId });
    if (!row) return false;
    this.emit({ job: row });
    return true;
  }

  /** Every candidate refused: ERROR, naming each failure from the job's history. */
  private async failAll(job: JobRow): Promise<JobRow> {
    const failures = (await jobEvents(this.pool, job.id)).filter((e) => e.fromState === 'PENDING' && e.toState === 'PENDING' && e.errorCode);
    const summary = failures.length > 0 ? failures.map((e) => e.message).join('; ') : 'the plan has no candidate left';
    const last = failures.at(-1)?.errorCode ?? ErrorCodes.UPSTREAM_UNAVAILABLE.code;
    const moved = await transition(this.pool, job.id, 'ERROR', {
      legalFrom: ['PENDING'],
      heldBy: this.brokerId,
      errorCode: last,
      errorMessage: `no candidate site accepted the job: ${summary}`,
    });
    if (!moved) return this.reread(job.id);
    this.emit(moved);
    return moved.job;
  }

  private async pollJob(job: JobRow): Promise<void> {
    if (!job.siteJobId) return this.resumeUnsubmitted(job);
    if (!job.siteId) {
      await this.fail(job, ErrorCodes.INTERNAL.code, `job ${job.id} names site job ${job.siteJobId} but no site`);
      return;
    }
    let site: SiteBinding;
    try {
      site = await this.resolveSite(job.siteId, this.scope(job));
    } catch (err) {
      await this.fail(job, errorCode(err), `${job.siteId}: ${errorText(err)}`);
      return;
    }
    let status: SiteJobStatus;
    try {
      if (!site.adapter.jobStatus) throw new ConstellationError('INVALID_ARGUMENT', `site ${job.siteId} cannot report job status`);
      status = await site.adapter.jobStatus(this.context(site, this.opts.requestTimeoutMs), job.siteJobId);
    } catch (err) {
      if (this.stopping.signal.aborted) {
        await releaseJobLease(this.pool, job.id, this.brokerId);
        return;
      }
      if (isTransient(err)) return this.unreachable(job, err);
      await this.fail(job, errorCode(err), `${job.siteId}: ${siteErrorText(err, site)}`);
      return;
    }
    const to = stateFromSite(status);
    if (to === job.state) {
      // A site that held its answer (UWS WAIT) paces the polls itself; the others are asked every interval.
      const answered = await recordPollAnswer(this.pool, job.id, this.brokerId, { sitePhase: status.sitePhase, pollDelayMs: status.held ? 0 : this.opts.pollIntervalMs });
      if (status.held) this.wake();
      if (answered?.recovered) {
        const event = await recordJobEvent(this.pool, { jobId: job.id, state: job.state, siteId: job.siteId, message: `${job.siteId} answers again (${status.sitePhase})` });
        this.emit({ job: answered.job, event });
      }
      return;
    }
    const moved = await transition(this.pool, job.id, to, {
      legalFrom: legalFrom(to),
      sitePhase: status.sitePhase,
      ...(to === 'ERROR' ? { errorCode: ErrorCodes.UPSTREAM.code, errorMessage: `${job.siteId}: ${status.error ?? `the site reports ${status.sitePhase}`}` } : {}),
      message: `${job.siteId} reports ${status.sitePhase}`,
      // A job that just moved on (queued → executing) is asked again at once, not an interval later.
      pollDelayMs: 0,
    });
    if (!moved) return releaseJobLease(this.pool, job.id, this.brokerId);
    this.emit(moved);
    if (!isTerminal(to)) this.wake();
  }

  private async unreachable(job: JobRow, err: unknown): Promise<void> {
    const since = job.unreachableSince ?? new Date();
    const message = `${job.siteId} has been unreachable since ${since.toISOString()}; the job is kept as ${job.state} and polled again later: ${errorText(err)}`;
    if (this.options.giveUpAfterMs !== undefined && Date.now() - since.getTime() >= this.options.giveUpAfterMs) {
      await this.fail(job, errorCode(err), `${job.siteId} stayed unreachable since ${since.toISOString()}; gave up: ${errorText(err)}`);
      return;
    }
    const noted = await recordPollUnreachable(this.pool, job.id, this.brokerId, {
      errorCode: errorCode(err),
      message,
      backoffBaseMs: this.opts.backoffBaseMs,
      backoffMaxMs: this.opts.backoffMaxMs,
    });
    if (noted?.first) {
      const event = await recordJobEvent(this.pool, { jobId: job.id, state: job.state, siteId: job.siteId, errorCode: errorCode(err), message: `${job.siteId} unreachable: ${errorText(err)}` });
      this.emit({ job: noted.job, event });
    }
  }

  /** The job's candidates; a plan the database gave back damaged fails the job (INTERNAL, saying so) instead of every poll. */
  private async plannedOrFail(job: JobRow): Promise<readonly JobCandidate[] | undefined> {
    if (job.plan.intact) return job.plan.candidates;
    this.options.onError?.(job.plan.error);
    await this.fail(job, job.plan.error.code, job.plan.error.message);
    return undefined;
  }

  private async fail(job: JobRow, code: string, message: string): Promise<void> {
    const moved = await transition(this.pool, job.id, 'ERROR', { legalFrom: legalFrom('ERROR'), errorCode: code, errorMessage: message });
    if (moved) this.emit(moved);
    else await releaseJobLease(this.pool, job.id, this.brokerId);
  }

  /**
   * A PENDING job no site holds whose submitter's lease ran out. Never sent: send it now. Sent
   * but never recorded: the site may hold it, and the job's kind says what it holds (findLost):
   * the job, adopted; nothing, so it is sent again; or that cannot be told apart from a second
   * copy, so it fails with a message that says so rather than run twice.
   */
  private async resumeUnsubmitted(job: JobRow): Promise<void> {
    if (job.submittedAt === null) {
      await this.dispatch(job);
      return;
    }
    const candidates = await this.plannedOrFail(job);
    if (!candidates) return;
    const candidate = candidates[job.candidateIndex];
    const unknown = `the broker stopped while submitting to ${job.siteId ?? 'a site'} at ${job.submittedAt.toISOString()}`;
    const cannotTell = `${unknown}; whether the site started the job is unknown, so it was not submitted again`;
    if (!candidate) {
      await this.fail(job, ErrorCodes.INTERNAL.code, cannotTell);
      return;
    }
    let site: SiteBinding;
    try {
      site = await this.resolveSite(candidate.siteId, this.scope(job));
    } catch {
      await this.fail(job, ErrorCodes.INTERNAL.code, cannotTell);
      return;
    }
    let lost: LostSubmit;
    try {
      lost = await kindOf(candidate.kind).findLost(site, this.context(site, this.opts.requestTimeoutMs), candidate, job.id, job.submittedAt);
    } catch (err) {
      if (isTransient(err)) return this.unreachable(job, err);
      await this.fail(job, errorCode(err), `${unknown}, and looking for the job there failed: ${siteErrorText(err, site)}`);
      return;
    }
    if (lost.outcome === 'unknown') {
      await this.fail(job, ErrorCodes.INTERNAL.code, cannotTell);
      return;
    }
    if (lost.outcome === 'found') {
      await this.placed(job, job.candidateIndex, candidate.siteId, lost.submission, `${unknown}; found it there as ${lost.submission.siteJobId} (${lost.submission.status.sitePhase}) by its run id`);
      return;
    }
    const cleared = await clearSubmission(this.pool, job.id, `${unknown}; ${candidate.siteId} holds no job with its run id, so it is sent again`);
    if (!cleared) return;
    this.emit({ job: cleared });
    await this.dispatch(cleared);
  }
}

/** `job` when it was created for `request`; otherwise the key was reused for another request. */
function sameRequest(job: JobRow, request: unknown): JobRow {
  if (stableJson(job.request) === stableJson(request)) return job;
  throw new ConstellationError(
    'INVALID_ARGUMENT',
    `idempotencyKey "${job.idempotencyKey}" was already used for a different request (job ${job.id}); use a new key for a new request`,
    { violations: [{ path: 'input.idempotencyKey', rule: 'idempotency', message: `already names job ${job.id}` }] },
  );
}

// jsonb does not keep key order, so requests are compared with their keys sorted.
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** The submit's candidates, each checked against its kind; the rest of the input checked too. */
function checkedCandidates(input: SubmitJobInput): JobCandidate[] {
  if (!isJobKind(input.kind)) throw new ConstellationError('INVALID_ARGUMENT', `job kind must be QUERY or CONTAINER, not ${String(input.kind)}`);
  if (input.candidates.length === 0) throw new ConstellationError('INVALID_ARGUMENT', 'a job needs at least one candidate site');
  const candidates = input.candidates.map((c, i) => submittedCandidate(input.kind, c, i));
  if (input.idempotencyKey !== undefined && (input.idempotencyKey.length === 0 || input.idempotencyKey.length > 200)) {
    throw new ConstellationError('INVALID_ARGUMENT', 'idempotencyKey must be 1 to 200 characters');
  }
  return candidates;
}

export type { JobState };
export type { JobScope, SiteBinding, SiteResolver };

/**
 * The poll lease and deadline, one derived from the other: a lease always outlasts the poll it
 * covers by LEASE_MARGIN_MS, so no second poll of a job starts while the first is in flight.
 */
export function pollTimings(leaseMs: number | undefined, requestTimeoutMs: number | undefined): { leaseMs: number; requestTimeoutMs: number } {
  const request = requestTimeoutMs ?? (leaseMs === undefined ? DEFAULT_REQUEST_TIMEOUT_MS : Math.min(DEFAULT_REQUEST_TIMEOUT_MS, leaseMs - LEASE_MARGIN_MS));
  const lease = leaseMs ?? request + LEASE_MARGIN_MS;
  if (!(request > 0) || lease < request + LEASE_MARGIN_MS) {
    throw new ConstellationError('INVALID_ARGUMENT', `a poll lease of ${lease} ms does not outlast its request deadline of ${request} ms; it must be at least ${Math.max(request, 1) + LEASE_MARGIN_MS} ms`);
  }
  return { leaseMs: lease, requestTimeoutMs: request };
}
