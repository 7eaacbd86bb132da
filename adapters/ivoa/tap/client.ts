/**
 * A TAP client (TAP 1.0/1.1 over UWS 1.0/1.1) on top of SiteHttp: synchronous queries,
 * the asynchronous job life cycle, and TAP_UPLOAD of VOTables. Results are returned as the
 * site sent them (a stream), so a large VOTable never has to sit in memory.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SiteCredential } from '../../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../../registry/model/errors.js';
import { UpstreamError, type ByteMeter, type SiteHttp, type HttpResponse, type RequestOptions } from '../../http.js';
import { parseUwsJob, uwsJobStatus, type UwsJob } from '../uws/job.js';
import { isTerminalUwsPhase } from '../uws/phases.js';
import { parseUwsJobListAsync, type UwsJobList } from '../uws/job-list.js';
import { readVOTableToArray } from '../votable/index.js';
import { buildMultipart, type FormPart } from './multipart.js';

/** Where a TAP service's query endpoints are (a TapEndpoints from VOSI works as is). */
export interface TapQueryEndpoints {
  sync: string;
  async: string;
}

/** What every TAP call may carry. */
export interface TapCallOptions {
  credential?: SiteCredential;
  signal?: AbortSignal;
  meter?: ByteMeter;
}

/** A table to upload (TAP_UPLOAD.<name>), as VOTable bytes or a VOTable byte stream. */
export interface TapUpload {
  name: string;
  votable: AsyncIterable<Uint8Array> | Uint8Array;
}

/** A query and its TAP parameters. */
export interface TapQueryOptions extends TapCallOptions {
  adql: string;
  maxrec?: number;
  /** FORMAT / RESPONSEFORMAT value (votable, csv, a MIME type...); the service default when absent. */
  format?: string;
  upload?: TapUpload;
  /** UWS RUNID: the client's own label for the job, listed with it (how a client finds a job whose creation answer it lost). */
  runId?: string;
}

/** A submitted async job: its URL and, when the service answered with it, the UWS document. */
export interface TapSubmitted {
  jobUrl: string;
  job?: UwsJob;
}

/** How to wait for a job. */
export interface TapPollOptions extends TapCallOptions {
  /** UWS 1.1 WAIT seconds per request (services may cap it); default 10, 0 disables it. */
  waitS?: number;
  /** First pause between polls; doubles each time up to `maxDelayMs`. Default 250 ms. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this long with UPSTREAM_TIMEOUT; default no limit (use `signal`). */
  timeoutMs?: number;
}

const FORM = 'application/x-www-form-urlencoded';
const UPLOAD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function queryParams(opts: TapQueryOptions): [string, string][] {
  const p: [string, string][] = [
    ['REQUEST', 'doQuery'],
    ['LANG', 'ADQL'],
    ['QUERY', opts.adql],
  ];
  if (opts.maxrec !== undefined) {
    if (!Number.isInteger(opts.maxrec) || opts.maxrec < 0) {
      throw new ConstellationError('INVALID_ARGUMENT', `MAXREC must be a non-negative integer, got ${opts.maxrec}`);
    }
    p.push(['MAXREC', String(opts.maxrec)]);
  }
  // TAP 1.0 names it FORMAT, DALI/TAP 1.1 RESPONSEFORMAT; services read either, so send both.
  if (opts.format !== undefined) p.push(['FORMAT', opts.format], ['RESPONSEFORMAT', opts.format]);
  if (opts.runId !== undefined) p.push(['RUNID', opts.runId]);
  if (opts.upload !== undefined) {
    if (!UPLOAD_NAME.test(opts.upload.name)) {
      throw new ConstellationError('INVALID_ARGUMENT', `upload table name "${opts.upload.name}" is not an ADQL regular identifier`);
    }
    p.push(['UPLOAD', `${opts.upload.name},param:${opts.upload.name}`]);
  }
  return p;
}

function formBody(params: [string, string][]): string {
  return new URLSearchParams(params).toString();
}

/** The request body for a query: a form, or multipart/form-data when a table is uploaded. */
function queryBody(opts: TapQueryOptions, extra: [string, string][] = []): { headers: Record<string, string>; body: string | AsyncIterable<Uint8Array> } {
  const params = [...queryParams(opts), ...extra];
  if (opts.upload === undefined) return { headers: { 'content-type': FORM }, body: formBody(params) };
  const parts: FormPart[] = params.map(([name, value]) => ({ name, value }));
  parts.push({ name: opts.upload.name, filename: `${opts.upload.name}.xml`, contentType: 'application/x-votable+xml', value: opts.upload.votable });
  const mp = buildMultipart(parts);
  return { headers: { 'content-type': mp.contentType }, body: mp.body };
}

function common(opts: TapCallOptions): Pick<RequestOptions, 'credential' | 'signal' | 'meter'> {
  return { credential: opts.credential, signal: opts.signal, meter: opts.meter };
}

/** The message of a VOTable error document (QUERY_STATUS=ERROR), else a trimmed excerpt of the text. */
export async function errorMessageOf(text: string): Promise<string> {
  if (/<VOTABLE/i.test(text)) {
    try {
      const doc = await readVOTableToArray(text);
      const info = doc.infos.find((i) => i.name === 'QUERY_STATUS');
      if (info?.content) return info.content;
    } catch (err) {
      if (isConstellationError(err) && err.kind === 'UPSTREAM') return err.violations[0]?.message ?? err.message;
    }
  }
  return text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 2000);
}

// DALI services answer a failed query with 400 and a VOTable saying why: surface that reason.
async function failIfError(res: HttpResponse, what: string): Promise<HttpResponse> {
  if (res.status < 400) return res;
  const message = await errorMessageOf(await res.text());
  throw new ConstellationError('UPSTREAM', `${what} failed (HTTP ${res.status}): ${message}`);
}

/**
 * Runs a synchronous query (POST {sync}) and returns the response with its body unread, as the
 * site sent it. A service error (HTTP 400 with a QUERY_STATUS=ERROR VOTable) becomes an
 * UPSTREAM ConstellationError carrying the service's message; an error VOTable sent with 200
 * is left to the reader of the stream, which raises the same error.
 */
export async function tapSync(http: SiteHttp, endpoints: TapQueryEndpoints, opts: TapQueryOptions): Promise<HttpResponse> {
  const { headers, body } = queryBody(opts);
  const res = await http.request(endpoints.sync, { ...common(opts), method: 'POST', headers, body, accept: [303, 302, 400] });
  if (res.status === 303 || res.status === 302) {
    // Some services (DaCHS, CADC) run sync queries as jobs and redirect to the result.
    await res.dump();
    const location = res.headers.location;
    if (!location) throw new ConstellationError('UPSTREAM_MALFORMED', `${endpoints.sync} redirected without a Location`);
    return failIfError(await http.request(new URL(location, endpoints.sync).toString(), { ...common(opts), accept: [400] }), 'TAP sync query');
  }
  return failIfError(res, 'TAP sync query');
}

/**
 * Creates an async job (POST {async}); with `run` the job is started in the same request
 * (PHASE=RUN). Services answer 303 with the job URL, or 200/201 with the UWS document.
 */
export async function tapSubmit(http: SiteHttp, endpoints: TapQueryEndpoints, opts: TapQueryOptions & { run?: boolean }): Promise<TapSubmitted> {
  const { headers, body } = queryBody(opts, opts.run ? [['PHASE', 'RUN']] : []);
  const res = await http.request(endpoints.async, { ...common(opts), method: 'POST', headers, body, accept: [303, 302, 400], followRedirects: false });
  if (res.status === 303 || res.status === 302) {
    await res.dump();
    const location = res.headers.location;
    if (!location) throw new ConstellationError('UPSTREAM_MALFORMED', `${endpoints.async} redirected without a Location`);
    return { jobUrl: new URL(location, endpoints.async).toString().replace(/\/+$/, '') };
  }
  await failIfError(res, 'TAP async submission');
  const job = parseUwsJob(await res.bytes());
  const location = res.headers.location;
  const jobUrl = location ? new URL(location, endpoints.async).toString() : `${endpoints.async.replace(/\/+$/, '')}/${encodeURIComponent(job.jobId)}`;
  return { jobUrl: jobUrl.replace(/\/+$/, ''), job };
}

async function postForm(http: SiteHttp, url: string, params: [string, string][], opts: TapCallOptions): Promise<void> {
  const res = await http.request(url, {
    ...common(opts),
    method: 'POST',
    headers: { 'content-type': FORM },
    body: formBody(params),
    accept: [303, 302, 400],
    followRedirects: false,
  });
  const text = await res.text();
  if (res.status >= 400) throw new ConstellationError('UPSTREAM', `POST ${url} failed (HTTP ${res.status}): ${await errorMessageOf(text)}`);
}

/** Starts a PENDING job (POST {job}/phase PHASE=RUN). */
export async function tapRun(http: SiteHttp, jobUrl: string, opts: TapCallOptions = {}): Promise<void> {
  await postForm(http, `${jobUrl}/phase`, [['PHASE', 'RUN']], opts);
}

/** The service's async job list, only jobs created after `after` when the service filters (UWS 1.1 AFTER). */
export async function tapJobList(http: SiteHttp, asyncUrl: string, opts: TapCallOptions & { after?: Date } = {}): Promise<UwsJobList> {
  const url = opts.after ? `${asyncUrl}?AFTER=${encodeURIComponent(opts.after.toISOString())}` : asyncUrl;
  return parseUwsJobListAsync(await (await http.request(url, common(opts))).bytes());
}

/** Reads the job document once; `waitS` asks the service to block until the phase changes (UWS 1.1). */
export async function tapJob(http: SiteHttp, jobUrl: string, opts: TapCallOptions & { waitS?: number } = {}): Promise<UwsJob> {
  const url = opts.waitS !== undefined && opts.waitS > 0 ? `${jobUrl}?WAIT=${Math.round(opts.waitS)}` : jobUrl;
  const res = await http.request(url, common(opts));
  return parseUwsJob(await res.bytes());
}

/** The job's error document ({job}/error): the VOTable's QUERY_STATUS text or the plain text. */
export async function tapErrorDetail(http: SiteHttp, jobUrl: string, opts: TapCallOptions = {}): Promise<string | undefined> {
  try {
    const res = await http.request(`${jobUrl}/error`, { ...common(opts), accept: [404] });
    const text = await res.text();
    return res.status === 404 ? undefined : await errorMessageOf(text);
  } catch (err) {
    if (isConstellationError(err)) return undefined;
    throw err;
  }
}

/** An UPSTREAM error for a job in phase ERROR: its errorSummary, plus the error document when it has detail. */
export async function jobError(http: SiteHttp, jobUrl: string, job: UwsJob, opts: TapCallOptions = {}): Promise<ConstellationError> {
  const summary = job.errorSummary?.message || `job ${job.jobId} failed`;
  let message = summary;
  if (job.errorSummary?.hasDetail !== false) {
    const detail = await tapErrorDetail(http, jobUrl, opts);
    if (detail && !summary.includes(detail)) message = `${summary}: ${detail}`;
  }
  return new ConstellationError('UPSTREAM', `TAP job ${job.jobId} failed: ${message}`);
}

/**
 * Waits for a job to reach a final phase, asking the service to block (WAIT) and backing off
 * exponentially between requests, so a service that ignores WAIT is not hammered. Returns the
 * COMPLETED, ABORTED or ARCHIVED job; a job in ERROR becomes an UPSTREAM ConstellationError.
 */
export async function tapPoll(http: SiteHttp, jobUrl: string, opts: TapPollOptions = {}): Promise<UwsJob> {
  const waitS = opts.waitS ?? 10;
  const maxDelay = opts.maxDelayMs ?? 10_000;
  let delay = opts.initialDelayMs ?? 250;
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    const wait = Number.isFinite(left) ? Math.min(waitS, Math.floor(left / 1000)) : waitS;
    const job = await tapJob(http, jobUrl, { ...opts, waitS: wait });
    if (job.phase === 'ERROR') throw await jobError(http, jobUrl, job, opts);
    if (isTerminalUwsPhase(job.phase)) return job;
    if (Date.now() >= deadline) {
      throw new ConstellationError('UPSTREAM_TIMEOUT', `TAP job ${job.jobId} still ${job.rawPhase} after ${opts.timeoutMs} ms`);
    }
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), undefined, { signal: opts.signal }).catch(() => {
      throw new ConstellationError('UPSTREAM_TIMEOUT', `waiting for TAP job ${job.jobId} was cancelled`);
    });
    delay = Math.min(maxDelay, delay * 2);
  }
}

/**
 * The result of a finished job: the result the job document names ("result", else the first),
 * else {job}/results/result as TAP prescribes. The body is returned unread.
 */
export async function tapResults(http: SiteHttp, jobUrl: string, opts: TapCallOptions & { job?: UwsJob } = {}): Promise<HttpResponse> {
  const href = opts.job === undefined ? undefined : uwsJobStatus(opts.job).resultUrl;
  const url = href === undefined ? `${jobUrl}/results/result` : new URL(href, `${jobUrl}/`).toString();
  return failIfError(await http.request(url, { ...common(opts), accept: [400] }), 'TAP result download');
}

/** Aborts a job (POST {job}/phase PHASE=ABORT). */
export async function tapAbort(http: SiteHttp, jobUrl: string, opts: TapCallOptions = {}): Promise<void> {
  await postForm(http, `${jobUrl}/phase`, [['PHASE', 'ABORT']], opts);
}

/**
 * Deletes a job: HTTP DELETE, falling back to POST ACTION=DELETE for services that do not
 * allow the method. A job that is already gone (404) counts as deleted.
 */
export async function tapDelete(http: SiteHttp, jobUrl: string, opts: TapCallOptions = {}): Promise<void> {
  const res = await http.request(jobUrl, { ...common(opts), method: 'DELETE', accept: [303, 302, 404, 405, 501], followRedirects: false });
  await res.dump();
  if (res.status === 405 || res.status === 501) {
    await postForm(http, jobUrl, [['ACTION', 'DELETE']], opts);
  }
}

/**
 * Creates an async job and starts it: PHASE=RUN in the creation request (UWS 1.1), then an
 * explicit run for services that ignore it there (DaCHS) and leave the job PENDING. Returns the
 * job URL and the job as it is after starting.
 *
 * Once the site has answered the creation, the job exists there: a failed read of its document
 * or run is not a reason to leave it. Both are tried again (START_ATTEMPTS, with backoff) while
 * the failure is one the site may get over; a job whose start still cannot be confirmed is
 * deleted there (retried within DELETE_AFTER_FAILED_START_MS) before the error is thrown, so the
 * caller may ask another site without this one running unwatched. When the deadline ran out or
 * the caller is stopping, the job is left as it is for the caller to find by its run id.
 */
export async function tapStart(http: SiteHttp, endpoints: TapQueryEndpoints, opts: TapQueryOptions): Promise<{ jobUrl: string; job: UwsJob }> {
  const { jobUrl, job: first } = await tapSubmit(http, endpoints, { ...opts, run: true });
  let failure: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if (attempt > 0 && !(await pause(START_BACKOFF_MS * 2 ** (attempt - 1), opts.signal))) break;
    try {
      return { jobUrl, job: await confirmStart(http, jobUrl, attempt === 0 ? first : undefined, opts) };
    } catch (err) {
      failure = err;
      if (!mayGetOver(err) || opts.signal?.aborted) break;
    }
  }
  // A job URL the outbound policy refused is not the site's to be called at all.
  if (opts.signal?.aborted || (isConstellationError(failure) && failure.kind === 'UPSTREAM_POLICY')) throw failure;
  try {
    await deleteWithRetries(http, jobUrl, opts);
  } catch (deleteErr) {
    throw new ConstellationError(isConstellationError(failure) ? failure.kind : 'UPSTREAM', `${errorText(failure)}; and the job it had made there could not be deleted: ${errorText(deleteErr)}`, { cause: failure });
  }
  throw failure;
}

/** The job after its start: the creation's answer, else its document read now, with a run sent when it is still PENDING. */
async function confirmStart(http: SiteHttp, jobUrl: string, answered: UwsJob | undefined, opts: TapCallOptions): Promise<UwsJob> {
  const job = answered ?? (await tapJob(http, jobUrl, opts));
  if (job.phase !== 'PENDING') return job;
  await tapRun(http, jobUrl, opts);
  return tapJob(http, jobUrl, opts);
}

/** Deletes a job whose start failed, trying again while the site may get over its failure, within DELETE_AFTER_FAILED_START_MS. */
async function deleteWithRetries(http: SiteHttp, jobUrl: string, opts: TapCallOptions): Promise<void> {
  // Its own deadline: the submit's may be nearly spent by the attempts to start the job.
  const signal = AbortSignal.timeout(DELETE_AFTER_FAILED_START_MS);
  for (let attempt = 0; ; attempt++) {
    try {
      await tapDelete(http, jobUrl, { ...opts, signal });
      return;
    } catch (err) {
      if (!mayGetOver(err) || attempt + 1 >= DELETE_ATTEMPTS || !(await pause(START_BACKOFF_MS * 2 ** attempt, signal))) throw err;
    }
  }
}

/** True for a failure a site may get over by the next request: unavailable, slow, rate limiting, or an answer cut short or garbled. */
function mayGetOver(err: unknown): boolean {
  return isConstellationError(err) && (RECOVERABLE_KINDS.has(err.kind) || (err instanceof UpstreamError && err.retryable));
}

/** Waits `ms`; false when `signal` ended the wait. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return false;
  return sleep(ms, true, { signal }).catch(() => false);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const RECOVERABLE_KINDS: ReadonlySet<string> = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_RATE_LIMITED', 'UPSTREAM_MALFORMED']);

/** How often the start of a job the site made is tried (each try is one document read, with a run when it is PENDING). */
const START_ATTEMPTS = 4;
/** The pause before the second try, doubling for each after it. */
const START_BACKOFF_MS = 250;
/** How often a job whose start failed is asked to be deleted (each a DELETE with the HTTP client's own retries). */
const DELETE_ATTEMPTS = 3;
/** How long deleting a job whose start failed may take, every try included. */
const DELETE_AFTER_FAILED_START_MS = 10_000;

/**
 * Runs a query as an async job end to end: submit with PHASE=RUN, wait, and return the result
 * response together with the job URL (the caller deletes the job when done with it).
 */
export async function tapAsyncQuery(
  http: SiteHttp,
  endpoints: TapQueryEndpoints,
  opts: TapQueryOptions & Omit<TapPollOptions, keyof TapCallOptions>,
): Promise<{ jobUrl: string; job: UwsJob; response: HttpResponse }> {
  const { jobUrl } = await tapStart(http, endpoints, opts);
  const job = await tapPoll(http, jobUrl, opts);
  if (job.phase !== 'COMPLETED') throw new ConstellationError('UPSTREAM', `TAP job ${job.jobId} ended ${job.rawPhase}`);
  return { jobUrl, job, response: await tapResults(http, jobUrl, { ...opts, job }) };
}
