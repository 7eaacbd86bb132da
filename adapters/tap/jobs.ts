/** The Adapter job hooks for any TAP service, on the TAP client: sync or async queries, status, cancel, results. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Adapter, AdapterContext, SiteCredential, SiteJobStatus, SiteQuery, SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp, HttpResponse } from '../http.js';
import { HeldResults } from '../held-results.js';
import { tapAbort, tapErrorDetail, tapJob, tapJobList, tapResults, tapStart, tapSync } from '../ivoa/tap/client.js';
import { uwsJobStatus } from '../ivoa/uws/job.js';
import { mapUwsPhase } from '../ivoa/uws/phases.js';

/** How the hooks find a service's TAP base URL and the credential to send. */
export interface TapJobRouting {
  /** TAP base URL of the service a query names (SiteQuery.service); RSP looks it up in Repertoire. */
  baseFor(ctx: AdapterContext, service: string): string | Promise<string>;
  /** The credential for the site (ESA exchanges a password for a session cookie). */
  credentialFor?(ctx: AdapterContext): Promise<SiteCredential>;
}

// jobStatus asks the site to hold its answer until the job's phase changes (UWS 1.1 WAIT), so
// a job that moves on during a poll is noticed at once; services without WAIT answer at once.
// Short, well inside a poll's request timeout and lease.
const STATUS_WAIT_S = 1;

/** How often a finished job's result is asked for before its first byte, and the pause before the next ask (times the attempt). */
const RESULT_ATTEMPTS = 3;
const RESULT_BACKOFF_MS = 250;

// A job document read that failed in one of these ways says nothing about the job: the site did not answer it whole.
const UNANSWERED_KINDS: ReadonlySet<string> = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_RATE_LIMITED', 'UPSTREAM_MALFORMED']);

type JobHooks = Required<Pick<Adapter, 'submitQuery' | 'jobStatus' | 'cancelJob' | 'jobResult' | 'findQueryJob'>>;

/**
 * Job hooks over TAP. Async queries are UWS jobs whose siteJobId is the job URL; a sync query
 * runs at once and its response waits (unread, for at most five minutes) under a "sync:" id
 * until jobResult streams it.
 */
export function createTapJobHooks(http: SiteHttp, routing: TapJobRouting): JobHooks {
  const held = new HeldResults<HttpResponse>('sync:', (res) => void res.dump().catch(() => undefined));
  const credential = async (ctx: AdapterContext) => (routing.credentialFor ? routing.credentialFor(ctx) : ctx.credential);
  const call = async (ctx: AdapterContext) => ({ credential: await credential(ctx), signal: ctx.signal, meter: ctx.meter });

  return {
    async submitQuery(ctx: AdapterContext, query: SiteQuery): Promise<{ siteJobId: string; status: SiteJobStatus }> {
      const base = (await routing.baseFor(ctx, query.service)).replace(/\/+$/, '');
      const endpoints = { sync: `${base}/sync`, async: `${base}/async` };
      const upload = query.upload ? { name: query.upload.name, votable: Buffer.from(query.upload.votable, 'utf8') } : undefined;
      const opts = { ...(await call(ctx)), adql: query.adql, maxrec: query.maxrec, format: query.format, runId: query.runId, upload };
      if (query.mode === 'sync') {
        const res = await tapSync(http, endpoints, opts);
        const siteJobId = held.hold(res);
        return { siteJobId, status: { state: 'COMPLETED', sitePhase: 'COMPLETED' } };
      }
      const { jobUrl, job } = await tapStart(http, endpoints, opts);
      return { siteJobId: jobUrl, status: uwsJobStatus(job) };
    },

    async jobStatus(ctx: AdapterContext, siteJobId: string): Promise<SiteJobStatus> {
      if (held.owns(siteJobId)) return held.status(siteJobId, 'COMPLETED');
      const opts = await call(ctx);
      const asked = Date.now();
      const job = await tapJob(http, siteJobId, { ...opts, waitS: STATUS_WAIT_S });
      const status = uwsJobStatus(job);
      // An answer that took the whole wait was held by the site: it paces the poller itself.
      if (Date.now() - asked >= STATUS_WAIT_S * 900) status.held = true;
      if (status.state === 'ERROR' && job.errorSummary?.hasDetail) {
        const detail = await tapErrorDetail(http, siteJobId, opts);
        if (detail && !status.error?.includes(detail)) status.error = status.error ? `${status.error}: ${detail}` : detail;
      }
      return status;
    },

    async cancelJob(ctx: AdapterContext, siteJobId: string): Promise<void> {
      if (held.owns(siteJobId)) {
        await held.take(siteJobId)?.dump();
        return;
      }
      await tapAbort(http, siteJobId, await call(ctx));
    },

    async jobResult(ctx: AdapterContext, siteJobId: string): Promise<SiteResult> {
      if (held.owns(siteJobId)) {
        const res = held.collect(siteJobId);
        return { contentType: res.headers['content-type'] ?? 'application/x-votable+xml', body: res.body };
      }
      const opts = await call(ctx);
      // Nothing has reached the reader until the result's headers are in: a garbled job
      // document or a failed first answer is asked again (a COMPLETED job's result does not
      // change), so one fault at the site does not fail the read. Once the body streams, a
      // failure ends the read.
      for (let attempt = 1; ; attempt++) {
        try {
          const job = await tapJob(http, siteJobId, opts);
          if (job.phase !== 'COMPLETED') {
            throw new ConstellationError('UPSTREAM', `TAP job ${job.jobId} has no result: it is ${job.rawPhase}${job.errorSummary ? ` (${job.errorSummary.message})` : ''}`);
          }
          const res = await tapResults(http, siteJobId, { ...opts, job });
          return { contentType: res.headers['content-type'] ?? 'application/x-votable+xml', body: res.body };
        } catch (err) {
          if (attempt >= RESULT_ATTEMPTS || !isConstellationError(err) || !UNANSWERED_KINDS.has(err.kind) || ctx.signal?.aborted) throw err;
          await sleep(RESULT_BACKOFF_MS * attempt, undefined, ctx.signal ? { signal: ctx.signal } : undefined).catch(() => undefined);
          if (ctx.signal?.aborted) throw err;
        }
      }
    },

    async findQueryJob(ctx: AdapterContext, query: SiteQuery, since: Date): Promise<{ siteJobId: string; status: SiteJobStatus } | undefined> {
      if (query.runId === undefined) return undefined;
      const asyncUrl = `${(await routing.baseFor(ctx, query.service)).replace(/\/+$/, '')}/async`;
      // A minute of slack for clock skew between the broker and the site.
      const opts = await call(ctx);
      const list = await tapJobList(http, asyncUrl, { ...opts, after: new Date(since.getTime() - 60_000) });
      const ref = list.jobs.find((j) => j.runId === query.runId);
      if (!ref) return undefined;
      const siteJobId = ref.href ?? `${asyncUrl}/${encodeURIComponent(ref.id)}`;
      if (ref.job) return { siteJobId, status: uwsJobStatus(ref.job) };
      try {
        return { siteJobId, status: uwsJobStatus(await tapJob(http, siteJobId, opts)) };
      } catch (err) {
        // The job is there: found, it is followed (the poller reads its document again later),
        // never left running because one read of it failed. The list's phase stands in meanwhile.
        if (!isConstellationError(err) || !UNANSWERED_KINDS.has(err.kind)) throw err;
        return { siteJobId, status: { state: mapUwsPhase(ref.phase), sitePhase: ref.rawPhase } };
      }
    },
  };
}
