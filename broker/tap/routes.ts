/**
 * The federation as one TAP 1.1 service at /tap: VOSI, sync, async (UWS 1.1), DALI examples.
 * Every error is a VOTable error document (QUERY_STATUS=ERROR) with the status of its coded error.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConstellationError, invalidArgument, isConstellationError } from '../../registry/model/errors.js';
import { isAdmin, groupsOf, ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { publishedSchemas } from './catalogue.js';
import { errorAnswer, errorVotable, VOTABLE_TYPE } from './error-document.js';
import { examplesFor, examplesXhtml } from './examples.js';
import { responseFormatOf } from './formats.js';
import { acceptFormBodies, paramsOf, type TapParams } from './form.js';
import { claimTapJobRun, createTapJob, deleteTapJob, endTapJob, linkTapJob, linkTapThread, setTapJobTimes, tapJobById, tapJobsOf, updatePendingTapJob, type TapJobRow } from './job-store.js';
import { QUERY_PARAMS, UPLOAD_MAX_BYTES, readQueryRequest, type TapQueryRequest } from './request.js';
import { identityOf, jobAnswer, jobError, startQuery, waitForJob, type TapAnswer } from './run.js';
import type { CrossSiteJoin } from './crossmatch-join.js';
import { joinAnswer, waitForThread } from './crossmatch-run.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import { LOCAL_SCHEMAS } from './schemas.js';
import { tapThreadAnswer, threadOfTapJob, threadRunning, waitUntilThreadPhaseChanges } from './async-thread.js';
import { fetchUpload } from './upload-fetch.js';
import { errorOf, isActive, jobListXml, jobXml, parametersXml, phaseOf, resultsXml, type UwsPhase } from './uws.js';
import { availabilityXml, capabilitiesXml, tablesXml } from './vosi.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';

/** Defaults of a new async job: an hour to run, kept a week. */
const EXECUTION_DURATION_S = 3600;
const RETENTION_MS = 7 * 86_400_000;
/** Longest a sync query or a WAIT blocks (a sync query also ends when its client leaves). */
const SYNC_LIMIT_MS = 3_600_000;
const MAX_WAIT_S = 600;

const XML = 'text/xml; charset=utf-8';

/** Register /tap and everything under it (a plugin: its form parsers and VOTable errors stay inside). */
export async function tapRoutes(app: FastifyInstance): Promise<void> {
  const upSince = new Date();
  // Room for one upload at its limit and the other parameters; a larger body is 413 before it is read whole.
  acceptFormBodies(app, UPLOAD_MAX_BYTES + 1024 * 1024);
  app.setErrorHandler((err, request, reply) => {
    const { status, body } = errorAnswer(err);
    if (status >= 500) request.log.error({ err }, 'TAP request failed');
    return reply.code(status).type(VOTABLE_TYPE).send(body);
  });

  const urlReader = (signal?: AbortSignal) => (name: string, url: string) => fetchUpload(services().http, name, url, UPLOAD_MAX_BYTES, signal);
  const base = (request: FastifyRequest) => `${request.protocol}://${request.host}/tap`;
  const services = (): Services => app.services;
  const caller = (request: FastifyRequest): Identity => identityOf(request.identity);
  const visibility = (identity: Identity) => (isAdmin(identity) ? 'all' : groupsOf(identity));

  app.get('/tap', async (request, reply) => reply.type('text/html; charset=utf-8').send(
    `<!DOCTYPE html><html><head><title>Constellation TAP service</title></head><body><h1>The federation as one TAP 1.1 service</h1><ul>${['capabilities', 'availability', 'tables', 'examples', 'sync', 'async'].map((p) => `<li><a href="${base(request)}/${p}">${p}</a></li>`).join('')}</ul></body></html>`));
  app.get('/tap/capabilities', async (request, reply) => reply.type(XML).send(capabilitiesXml(base(request))));
  app.get('/tap/availability', async (_request, reply) => reply.type(XML).send(availabilityXml(true, upSince, 'the broker answers; each query runs at a member site, whose health the planner weighs')));
  app.get('/tap/tables', async (request, reply) => {
    const identity = caller(request);
    return reply.type(XML).send(tablesXml(await publishedSchemas(services().pool, visibility(identity), LOCAL_SCHEMAS)));
  });
  app.get('/tap/examples', async (request, reply) => {
    // The same examples for everyone: built from what an anonymous caller sees.
    const schemas = await publishedSchemas(services().pool, [], LOCAL_SCHEMAS);
    return reply.type('application/xhtml+xml; charset=utf-8').send(examplesXhtml(examplesFor(schemas)));
  });

  // ---- sync -------------------------------------------------------------
  const sync = async (request: FastifyRequest, reply: FastifyReply) => {
    const { values, files } = paramsOf(request);
    const abort = new AbortController();
    const req = await readQueryRequest(values, files, urlReader(abort.signal));
    request.raw.once('close', () => abort.abort());
    const started = await startQuery(services(), req, caller(request), true, base(request));
    if (started.kind === 'local') return answer(reply, await started.answer());
    if (started.kind === 'thread') return threadAnswer(reply, started.thread, started.join, req, abort.signal);
    const job = await waitForJob(services(), started.job, SYNC_LIMIT_MS, abort.signal);
    if (job.state !== 'COMPLETED') {
      if (!['ERROR', 'ABORTED'].includes(job.state)) await services().jobs.cancel(job.id, job.owner).catch(() => undefined);
      return failedJob(reply, job);
    }
    return answer(reply, await jobAnswer(services(), job, req.format, abort.signal));
  };
  /** A sync positional join across sites: its thread followed to its end, then its rows (or its error as a VOTable error document). */
  const threadAnswer = async (reply: FastifyReply, started: ThreadRow, join: CrossSiteJoin, req: TapQueryRequest, signal: AbortSignal) => {
    const thread = await waitForThread(services(), started, SYNC_LIMIT_MS, signal);
    if (thread.state === 'COMPLETED') return answer(reply, await joinAnswer(thread, join, req.format, req.maxrec));
    if (!['ERROR', 'ABORTED'].includes(thread.state)) await services().threads.cancel(thread.id, thread.owner).catch(() => undefined);
    const message = thread.state === 'ERROR' ? `the cross-match thread ${thread.id} failed: ${thread.errorMessage ?? 'no reason given'}` : thread.state === 'ABORTED' ? `the cross-match thread ${thread.id} was aborted` : `the cross-match thread ${thread.id} did not finish in time (${thread.state})`;
    return reply.code(thread.state === 'ERROR' ? 502 : 400).type(VOTABLE_TYPE).send(errorVotable(message, thread.errorCode ?? undefined));
  };
  app.get('/tap/sync', sync);
  app.post('/tap/sync', sync);

  // ---- async (UWS 1.1) ---------------------------------------------------
  app.get('/tap/async', async (request, reply) => {
    const { values } = paramsOf(request);
    const url = new URL(request.url, 'http://x');
    const phases = url.searchParams.getAll('PHASE').concat(url.searchParams.getAll('phase'));
    const after = values.get('AFTER');
    const last = values.get('LAST');
    const afterDate = after === undefined ? undefined : new Date(after);
    if (afterDate && Number.isNaN(afterDate.getTime())) throw invalidArgument('AFTER', `"${after!.slice(0, 40)}" is not an ISO 8601 time`);
    if (last !== undefined && !/^\d+$/.test(last)) throw invalidArgument('LAST', `must be a positive integer, not "${last.slice(0, 40)}"`);
    const owner = ownerOf(caller(request));
    const rows = await tapJobsOf(services().pool, owner, { ...(afterDate ? { after: afterDate } : {}), ...(last !== undefined ? { last: Number(last) } : {}) });
    const listed = rows.map((tap) => ({ tap, phase: phaseOf(tap, tap.jobState ? { state: tap.jobState as JobRow['state'] } : tap.jobId ? null : undefined, tap.threadState ? { state: tap.threadState as ThreadRow['state'] } : null) }))
      .filter((j) => phases.length === 0 || phases.includes(j.phase));
    return reply.type(XML).send(jobListXml(listed, `${base(request)}/async`));
  });

  app.post('/tap/async', async (request, reply) => {
    const { values, files } = paramsOf(request);
    const owner = ownerOf(caller(request));
    const params = keptParams(values);
    const upload = await checkedUpload(values, files);
    const tap = await createTapJob(services().pool, { owner, params, ...(upload ? { upload } : {}), executionDuration: EXECUTION_DURATION_S, destruction: new Date(Date.now() + RETENTION_MS) });
    if (values.get('PHASE')?.toUpperCase() === 'RUN') await run(tap, caller(request));
    return reply.code(303).header('location', `${base(request)}/async/${tap.id}`).type('text/plain').send('');
  });

  /** The caller's job `id` with its broker job or thread, or NOT_FOUND (another owner's job is not found, as one that does not exist). */
  const load = async (request: FastifyRequest<{ Params: { id: string } }>): Promise<{ tap: TapJobRow; job: JobRow | undefined; thread: ThreadRow | undefined; phase: UwsPhase }> => {
    const owner = ownerOf(caller(request));
    const tap = await tapJobById(services().pool, request.params.id, owner);
    if (!tap) throw new ConstellationError('NOT_FOUND', `no job ${request.params.id.slice(0, 60)}`);
    let job = tap.jobId ? await services().jobs.get(tap.jobId, owner) : undefined;
    // EXECUTIONDURATION: a job running longer is aborted.
    if (job && tap.startedAt && !['COMPLETED', 'ERROR', 'ABORTED'].includes(job.state) && Date.now() - tap.startedAt.getTime() > tap.executionDuration * 1000 && tap.executionDuration > 0) {
      job = await services().jobs.cancel(job.id, owner).catch(() => job);
    }
    let thread = await threadOfTapJob(services(), tap);
    if (threadRunning(thread) && tap.startedAt && tap.executionDuration > 0 && Date.now() - tap.startedAt.getTime() > tap.executionDuration * 1000) {
      thread = await services().threads.cancel(thread.id, owner).catch(() => thread);
    }
    return { tap, job, thread, phase: phaseOf(tap, job ?? null, thread ?? null) };
  };
  const jobUrl = (request: FastifyRequest, id: string) => `${base(request)}/async/${id}`;

  app.get<{ Params: { id: string } }>('/tap/async/:id', async (request, reply) => {
    let { tap, job, thread, phase } = await load(request);
    const { values } = paramsOf(request);
    const wait = values.get('WAIT');
    if (wait !== undefined) {
      if (!/^-?\d+$/.test(wait)) throw invalidArgument('WAIT', `must be an integer number of seconds, not "${wait.slice(0, 40)}"`);
      const waitPhase = values.get('PHASE')?.toUpperCase();
      const seconds = Number(wait) < 0 ? MAX_WAIT_S : Math.min(Number(wait), MAX_WAIT_S);
      // UWS 1.1: block while the job is in an active phase (and in the one named by PHASE, when given).
      if (job && isActive(phase) && (!waitPhase || waitPhase === phase) && seconds > 0) {
        const abort = new AbortController();
        request.raw.once('close', () => abort.abort());
        const before = phase;
        const moved = await waitUntilPhaseChanges(services(), job, before, seconds * 1000, abort.signal);
        ({ tap, job, phase } = { tap, job: moved, phase: phaseOf(tap, moved) });
      } else if (thread && isActive(phase) && (!waitPhase || waitPhase === phase) && seconds > 0) {
        const abort = new AbortController();
        request.raw.once('close', () => abort.abort());
        thread = await waitUntilThreadPhaseChanges(services(), tap, thread, phase, seconds * 1000, abort.signal);
        phase = phaseOf(tap, null, thread);
      }
    }
    return reply.type(XML).send(jobXml(tap, job, jobUrl(request, tap.id), thread ?? null));
  });

  const remove = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const { tap, job, thread } = await load(request);
    if (job && !['COMPLETED', 'ERROR', 'ABORTED'].includes(job.state)) await services().jobs.cancel(job.id, job.owner).catch(() => undefined);
    if (threadRunning(thread)) await services().threads.cancel(thread.id, thread.owner).catch(() => undefined);
    await deleteTapJob(services().pool, tap.id);
    return reply.code(303).header('location', `${base(request)}/async`).type('text/plain').send('');
  };
  app.delete<{ Params: { id: string } }>('/tap/async/:id', remove);
  app.post<{ Params: { id: string } }>('/tap/async/:id', async (request, reply) => {
    const { values, files } = paramsOf(request);
    if (values.get('ACTION')?.toUpperCase() === 'DELETE') return remove(request, reply);
    // Parameters posted to the job itself (UWS 1.1 lets a client set them here too).
    const { tap } = await load(request);
    await setParams(tap, values, files);
    if (values.get('PHASE')) await setPhase(request, values.get('PHASE')!);
    return reply.code(303).header('location', jobUrl(request, tap.id)).type('text/plain').send('');
  });

  app.get<{ Params: { id: string } }>('/tap/async/:id/phase', async (request, reply) => reply.type('text/plain').send((await load(request)).phase));
  app.post<{ Params: { id: string } }>('/tap/async/:id/phase', async (request, reply) => {
    const { values } = paramsOf(request);
    await setPhase(request, values.get('PHASE') ?? '');
    return reply.code(303).header('location', jobUrl(request, request.params.id)).type('text/plain').send('');
  });
  const setPhase = async (request: FastifyRequest<{ Params: { id: string } }>, value: string) => {
    const { tap, job, thread, phase } = await load(request);
    const p = value.toUpperCase();
    if (p === 'RUN') {
      if (phase !== 'PENDING') throw invalidArgument('PHASE', `RUN: job ${tap.id} is ${phase}, and only a PENDING job can be run`);
      await run(tap, caller(request));
    } else if (p === 'ABORT') {
      if (job && !['COMPLETED', 'ERROR', 'ABORTED'].includes(job.state)) await services().jobs.cancel(job.id, job.owner);
      else if (threadRunning(thread)) await services().threads.cancel(thread.id, thread.owner);
      else if (!tap.jobId && !tap.threadJoin && phase === 'PENDING') await endTapJob(services().pool, tap.id, 'ABORTED', null);
    } else throw invalidArgument('PHASE', `must be RUN or ABORT, not "${value.slice(0, 40)}"`);
  };

  app.get<{ Params: { id: string } }>('/tap/async/:id/executionduration', async (request, reply) => reply.type('text/plain').send(String((await load(request)).tap.executionDuration)));
  app.post<{ Params: { id: string } }>('/tap/async/:id/executionduration', async (request, reply) => {
    const { tap } = await load(request);
    const value = paramsOf(request).values.get('EXECUTIONDURATION') ?? '';
    if (!/^\d+$/.test(value.trim()) || Number(value) > 2_147_483_647) throw invalidArgument('EXECUTIONDURATION', `must be a non-negative whole number of seconds, not "${value.slice(0, 40)}"`);
    await setTapJobTimes(services().pool, tap.id, { executionDuration: Number(value) });
    return reply.code(303).header('location', jobUrl(request, tap.id)).type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/destruction', async (request, reply) => reply.type('text/plain').send((await load(request)).tap.destruction.toISOString()));
  app.post<{ Params: { id: string } }>('/tap/async/:id/destruction', async (request, reply) => {
    const { tap } = await load(request);
    const value = paramsOf(request).values.get('DESTRUCTION') ?? '';
    const at = new Date(value);
    if (!/^\d{4}-\d\d-\d\dT/.test(value) || Number.isNaN(at.getTime())) throw invalidArgument('DESTRUCTION', `must be an ISO 8601 time, not "${value.slice(0, 40)}"`);
    await setTapJobTimes(services().pool, tap.id, { destruction: at });
    return reply.code(303).header('location', jobUrl(request, tap.id)).type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/quote', async (request, reply) => {
    await load(request);
    return reply.type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/owner', async (request, reply) => {
    await load(request);
    return reply.type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/parameters', async (request, reply) => reply.type(XML).send(parametersXml((await load(request)).tap)));
  app.post<{ Params: { id: string } }>('/tap/async/:id/parameters', async (request, reply) => {
    const { tap } = await load(request);
    const { values, files } = paramsOf(request);
    await setParams(tap, values, files);
    return reply.code(303).header('location', jobUrl(request, tap.id)).type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/results', async (request, reply) => {
    const { tap, phase } = await load(request);
    return reply.type(XML).send(resultsXml(phase, jobUrl(request, tap.id)));
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/error', async (request, reply) => {
    const { tap, job, thread, phase } = await load(request);
    if (phase !== 'ERROR' && phase !== 'ABORTED') throw new ConstellationError('NOT_FOUND', `job ${tap.id} has no error: it is ${phase}`);
    if (tap.threadJoin) return reply.type(VOTABLE_TYPE).send(errorVotable(errorOf(tap, job, thread ?? null), thread?.errorCode ?? undefined));
    return reply.type(VOTABLE_TYPE).send(errorVotable(tap.jobId ? (job ? jobError(job) : 'the job is gone') : (tap.errorMessage ?? 'the job was aborted')));
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/results/result', async (request, reply) => {
    const { tap, job, thread, phase } = await load(request);
    if (phase !== 'COMPLETED') throw new ConstellationError('NOT_FOUND', `job ${tap.id} has no result: it is ${phase}`);
    if (thread) return answer(reply, await tapThreadAnswer(tap, thread));
    if (!job) {
      // A query of local tables is answered when its result is read.
      const req = await readQueryRequest(new Map(Object.entries(tap.params)), uploadedFiles(tap), urlReader());
      const started = await startQuery(services(), req, caller(request), false, base(request));
      if (started.kind !== 'local') throw new ConstellationError('INTERNAL', `job ${tap.id} is complete but was never run`);
      return answer(reply, await started.answer());
    }
    const abort = new AbortController();
    request.raw.once('close', () => abort.abort());
    return answer(reply, await jobAnswer(services(), job, responseFormatOf(tap.params.RESPONSEFORMAT ?? tap.params.FORMAT), abort.signal));
  });

  /** PHASE=RUN: check and start the query; a refusal (bad ADQL, unknown table…) is the job's ERROR, nothing is sent. */
  async function run(tap: TapJobRow, identity: Identity): Promise<void> {
    const pool = services().pool;
    if (!(await claimTapJobRun(pool, tap.id))) throw invalidArgument('PHASE', `RUN: job ${tap.id} is already running`);
    let req: TapQueryRequest;
    try {
      req = await readQueryRequest(new Map(Object.entries(tap.params)), uploadedFiles(tap), urlReader());
      const started = await startQuery(services(), req, identity);
      if (started.kind === 'local') await endTapJob(pool, tap.id, 'COMPLETED', null);
      else if (started.kind === 'job') await linkTapJob(pool, tap.id, started.job.id);
      else await linkTapThread(pool, tap.id, started.thread.id, started.join);
    } catch (err) {
      const coded = isConstellationError(err);
      await endTapJob(pool, tap.id, 'ERROR', coded ? `${err.code}: ${err.message}` : 'internal error');
      if (!coded) app.log.error({ err }, 'starting a TAP job failed');
    }
  }

  /** Change a PENDING job's query parameters (others are ignored); a job past PENDING is INVALID_ARGUMENT. */
  async function setParams(tap: TapJobRow, values: ReadonlyMap<string, string>, files: ReadonlyMap<string, Buffer>): Promise<void> {
    const kept = keptParams(values);
    if (Object.keys(kept).length === 0 && files.size === 0) return;
    const upload = await checkedUpload(values, files);
    const changed = await updatePendingTapJob(services().pool, tap.id, { params: { ...tap.params, ...kept }, ...(upload ? { upload } : {}) });
    if (!changed) throw invalidArgument('parameters', `job ${tap.id} is no longer PENDING; its parameters cannot change`);
  }
}

/** The upload a job keeps, as the file part its UPLOAD parameter names. */
function uploadedFiles(tap: TapJobRow): Map<string, string> {
  return tap.uploadName && tap.uploadVotable !== null ? new Map([[tap.uploadName, tap.uploadVotable]]) : new Map();
}

/** The TAP parameters a job keeps, by upper-case name. */
function keptParams(values: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of QUERY_PARAMS) {
    const v = values.get(name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** The one inline upload a request carries (checked for size; its VOTable is checked when the job runs, like the rest). */
async function checkedUpload(values: ReadonlyMap<string, string>, files: ReadonlyMap<string, Buffer>): Promise<{ name: string; votable: string } | undefined> {
  const upload = values.get('UPLOAD');
  if (!upload) return undefined;
  const m = /^[^,]+,param:(.+)$/.exec(upload.split(';')[0].trim());
  if (!m) return undefined;
  const part = files.get(m[1]);
  if (!part) return undefined;
  if (part.byteLength > UPLOAD_MAX_BYTES) throw new ConstellationError('PAYLOAD_TOO_LARGE', `UPLOAD ${m[1]} is ${part.byteLength} bytes; this service accepts uploaded tables of at most ${UPLOAD_MAX_BYTES} bytes`);
  return { name: m[1], votable: part.toString('utf8') };
}

/** Send a result stream. */
function answer(reply: FastifyReply, result: TapAnswer): FastifyReply {
  return reply.type(result.contentType).send(Readable.from(result.body, { objectMode: false }));
}

/** A failed (or aborted, or unfinished) job as a VOTable error document. */
function failedJob(reply: FastifyReply, job: JobRow): FastifyReply {
  // A site's refusal of the query is the query's fault (400); the rest keep their coded status.
  const code = job.errorCode ?? 'CONSTELLATION_E_UPSTREAM';
  const status = job.state === 'ERROR' && code === 'CONSTELLATION_E_UPSTREAM' ? 400 : job.state === 'ABORTED' ? 400 : 502;
  return reply.code(status).type(VOTABLE_TYPE).send(errorVotable(job.state === 'COMPLETED' ? 'no result' : isActiveState(job) ? `the job did not finish in time (${job.state})` : jobError(job), code));
}

function isActiveState(job: JobRow): boolean {
  return !['COMPLETED', 'ERROR', 'ABORTED'].includes(job.state);
}

/** Wait until `job`'s UWS phase is no longer `phase` (or the time runs out). */
async function waitUntilPhaseChanges(services: Services, job: JobRow, phase: UwsPhase, ms: number, signal: AbortSignal): Promise<JobRow> {
  const until = Date.now() + ms;
  let current = job;
  while (Date.now() < until && !signal.aborted) {
    // waitForJob resolves on the final state; a QUEUED → EXECUTING move is seen by rereading each second.
    current = await waitForJob(services, current, Math.min(1000, until - Date.now()), signal);
    const now = phaseOf({ phase: 'PENDING', jobId: current.id }, current);
    if (now !== phase) return current;
  }
  return current;
}

export type { TapParams };
