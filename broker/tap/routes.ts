/**
 * The federation as one TAP 1.1 service at /tap: VOSI, sync, async (UWS 1.1), DALI examples.
 * Every error is a VOTable error document (QUERY_STATUS=ERROR) with the status of its coded error.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import { logFailure } from '../http/errors.js';
import { isAdmin, groupsOf, ownerOf, type Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { isTerminal } from '../jobs/state.js';
import { publishedSchemas } from './catalogue.js';
import { errorAnswer, errorVotable, VOTABLE_TYPE } from './error-document.js';
import { examplesFor, examplesXhtml } from './examples.js';
import { responseFormatOf } from './formats.js';
import { acceptFormBodies, paramsOf, type TapParams } from './form.js';
import { abortUnlinkedTapJob, createTapJob, deleteTapJob, localResultOf, setTapJobTimes, tapJobById, tapJobsOf, updatePendingTapJob, type TapJobRow } from './job-store.js';
import { UPLOAD_MAX_BYTES, readQueryRequest, type TapQueryRequest } from './request.js';
import { followedJob, identityOf, jobAnswer, jobError, startQuery, waitForJob, type TapAnswer } from './run.js';
import type { CrossSiteJoin } from './crossmatch-join.js';
import { followedThread, joinAnswer, waitForThread } from './crossmatch-run.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import { LOCAL_SCHEMAS } from './schemas.js';
import { tapThreadAnswer, threadOfTapJob, threadRunning } from './async-thread.js';
import { followedTapJob, runTapJob, type RunContext } from './async-run.js';
import { keptParams, uploadToKeep } from './async-upload.js';
import { stopJob, stopThread } from './cancel.js';
import { DEFAULT_EXECUTION_DURATION_S, DEFAULT_RETENTION_MS, MAX_LISTED_JOBS, destructionOf, executionDurationOf, lastOf } from './limits.js';
import { fetchUpload } from './upload-fetch.js';
import { errorOf, isActive, isReportedPhase, jobListXml, jobXml, parametersXml, phaseOf, resultsXml, UWS_PHASE_NAMES, type UwsPhase } from './uws.js';
import { availabilityXml, capabilitiesXml, tablesXml } from './vosi.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';
import { follow, type Warn } from './wait.js';
import { replyStream } from '../jobs/pass-through.js';

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
    if (status >= 500) logFailure(request.log, err, 'TAP request failed');
    return reply.code(status).type(VOTABLE_TYPE).send(body);
  });

  const urlReader = (signal?: AbortSignal) => (name: string, url: string) => fetchUpload(services().http, name, url, UPLOAD_MAX_BYTES, signal);
  const base = (request: FastifyRequest) => `${request.protocol}://${request.host}/tap`;
  const services = (): Services => app.services;
  const caller = (request: FastifyRequest): Identity => identityOf(request.identity);
  const visibility = (identity: Identity) => (isAdmin(identity) ? 'all' : groupsOf(identity));
  const warn: Warn = (err, what) => app.log.warn({ err }, what);
  const runContext = (request: FastifyRequest): RunContext => ({ services: services(), warn, error: (err, what) => app.log.error({ err }, what), baseUrl: base(request) });
  /**
   * Whether the caller may hold async jobs. With an identity provider every anonymous caller
   * would share one owner, and so read and abort each other's jobs: there they may not (as
   * GraphQL lists no anonymous jobs). Without one (a single-user federation) they may.
   */
  const keepsJobs = (identity: Identity) => identity.kind !== 'anonymous' || !services().config.identity;
  /** The owner of the caller's async jobs, or UNAUTHENTICATED when the caller may hold none. */
  const jobOwner = (request: FastifyRequest): string => {
    const identity = caller(request);
    if (!keepsJobs(identity)) throw new ConstellationError('UNAUTHENTICATED', 'async TAP jobs are kept only for callers who are logged in on this federation (anonymous callers would share one job list); send a bearer token, or use /tap/sync');
    return ownerOf(identity);
  };

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
    const abort = abortOnLeave(reply);
    const { values, files } = paramsOf(request);
    const req = await readQueryRequest(values, files, urlReader(abort.signal));
    const started = await startQuery(services(), req, caller(request), true, base(request));
    if (started.kind === 'local') return answer(reply, await started.answer());
    if (started.kind === 'thread') return threadAnswer(reply, started.thread, started.join, req, abort.signal);
    const job = await waitForJob(services(), started.job, SYNC_LIMIT_MS, warn, abort.signal);
    if (job.state !== 'COMPLETED') {
      // Nobody will read it (its client left, or the time ran out): stop it at its site.
      if (!isTerminal(job.state)) await stopJob(services(), job.id, job.owner, warn, abort.signal.aborted ? 'its /tap/sync client left' : 'its /tap/sync time ran out');
      return failedJob(reply, job);
    }
    return answer(reply, await jobAnswer(services(), job, req.format, abort.signal));
  };
  /** A sync positional join across sites: its thread followed to its end, then its rows (or its error as a VOTable error document). */
  const threadAnswer = async (reply: FastifyReply, started: ThreadRow, join: CrossSiteJoin, req: TapQueryRequest, signal: AbortSignal) => {
    const thread = await waitForThread(services(), started, SYNC_LIMIT_MS, warn, signal);
    if (thread.state === 'COMPLETED') return answer(reply, await joinAnswer(thread, join, req.format, req.maxrec));
    if (threadRunning(thread)) await stopThread(services(), thread.id, thread.owner, warn, signal.aborted ? 'its /tap/sync client left' : 'its /tap/sync time ran out');
    const message = thread.state === 'ERROR' ? `the cross-match thread ${thread.id} failed: ${thread.errorMessage ?? 'no reason given'}` : thread.state === 'ABORTED' ? `the cross-match thread ${thread.id} was aborted` : `the cross-match thread ${thread.id} did not finish in time (${thread.state})`;
    return reply.code(thread.state === 'ERROR' ? 502 : 400).type(VOTABLE_TYPE).send(errorVotable(message, thread.errorCode ?? undefined));
  };
  app.get('/tap/sync', sync);
  app.post('/tap/sync', sync);

  // ---- async (UWS 1.1) ---------------------------------------------------
  app.get('/tap/async', async (request, reply) => {
    const { values, all } = paramsOf(request);
    const phases = phasesAsked(all.get('PHASE') ?? []);
    const after = values.get('AFTER');
    const last = values.get('LAST');
    const afterDate = after === undefined ? undefined : new Date(after);
    if (after !== undefined && (!afterDate || Number.isNaN(afterDate.getTime()))) throw invalidArgument('AFTER', `"${after.slice(0, 40)}" is not an ISO 8601 time`);
    const identity = caller(request);
    // With an identity provider anonymous callers hold no jobs (keepsJobs): their list is empty.
    const listed = !keepsJobs(identity) || phases === 'none' ? [] : await tapJobsOf(services().pool, ownerOf(identity), {
      ...(afterDate ? { after: afterDate } : {}),
      last: last === undefined ? MAX_LISTED_JOBS : lastOf(last),
      phases: phases === 'all' ? [] : phases,
    });
    return reply.type(XML).send(jobListXml(listed, `${base(request)}/async`));
  });

  app.post('/tap/async', async (request, reply) => {
    const owner = jobOwner(request);
    const abort = abortOnLeave(reply);
    const { values, files } = paramsOf(request);
    const params = keptParams(values);
    const upload = await uploadToKeep(values, files, urlReader(abort.signal));
    const tap = await createTapJob(services().pool, { owner, params, ...(upload ? { upload } : {}), executionDuration: DEFAULT_EXECUTION_DURATION_S, destruction: new Date(Date.now() + DEFAULT_RETENTION_MS) });
    if (values.get('PHASE')?.toUpperCase() === 'RUN') await runTapJob(runContext(request), tap, caller(request));
    return reply.code(303).header('location', `${base(request)}/async/${tap.id}`).type('text/plain').send('');
  });

  /** The caller's job `id` with its broker job or thread, or NOT_FOUND (another owner's job is not found, as one that does not exist). */
  const load = async (request: FastifyRequest<{ Params: { id: string } }>): Promise<{ tap: TapJobRow; job: JobRow | undefined; thread: ThreadRow | undefined; phase: UwsPhase }> => {
    const identity = caller(request);
    const tap = keepsJobs(identity) ? await tapJobById(services().pool, request.params.id, ownerOf(identity)) : undefined;
    if (!tap) throw new ConstellationError('NOT_FOUND', `no job ${request.params.id.slice(0, 60)}`);
    // EXECUTIONDURATION is enforced by the clean-up (expiry.ts), whether or not the job is read.
    const job = tap.jobId ? await services().jobs.get(tap.jobId, tap.owner) : undefined;
    const thread = await threadOfTapJob(services(), tap);
    return { tap, job, thread, phase: phaseOf(tap, job ?? null, thread ?? null) };
  };
  const jobUrl = (request: FastifyRequest, id: string) => `${base(request)}/async/${id}`;

  app.get<{ Params: { id: string } }>('/tap/async/:id', async (request, reply) => {
    let loaded = await load(request);
    const { values } = paramsOf(request);
    const wait = values.get('WAIT');
    if (wait !== undefined) {
      if (!/^-?\d+$/.test(wait.trim())) throw invalidArgument('WAIT', `must be an integer number of seconds, not "${wait.slice(0, 40)}"`);
      const waitPhase = values.get('PHASE')?.toUpperCase();
      const seconds = wait.trim().startsWith('-') ? MAX_WAIT_S : wait.trim().length > 4 ? MAX_WAIT_S : Math.min(Number(wait), MAX_WAIT_S);
      // UWS 1.1: block while the job is in an active phase (and in the one named by PHASE, when given).
      if (isActive(loaded.phase) && (!waitPhase || waitPhase === loaded.phase) && seconds > 0) {
        await waitUntilPhaseChanges(loaded, seconds * 1000, abortOnLeave(reply).signal);
        loaded = await load(request);
      }
    }
    return reply.type(XML).send(jobXml(loaded.tap, loaded.job, jobUrl(request, loaded.tap.id), loaded.thread ?? null));
  });

  /** Block until the job's phase is no longer what `loaded` says (or `ms` runs out, or the client leaves), following whatever the job is now. */
  const waitUntilPhaseChanges = async (loaded: { tap: TapJobRow; job: JobRow | undefined; thread: ThreadRow | undefined; phase: UwsPhase }, ms: number, signal: AbortSignal): Promise<void> => {
    const { tap, job, thread, phase } = loaded;
    if (job) await follow(job, followedJob(services(), job, warn), (j) => phaseOf(tap, j) !== phase, ms, signal);
    else if (thread) await follow(thread, followedThread(services(), thread, warn), (t) => phaseOf(tap, null, t) !== phase, ms, signal);
    // Claimed but not linked yet (QUEUED), or a local run (EXECUTING): the job's own row changes.
    else await follow(tap, followedTapJob(services(), tap, warn), (t) => t.jobId !== null || t.threadJoin !== null || phaseOf(t, null) !== phase, ms, signal);
  };

  const remove = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const { tap, job, thread } = await load(request);
    if (job && !isTerminal(job.state)) await stopJob(services(), job.id, job.owner, warn, `TAP job ${tap.id} was deleted`);
    if (threadRunning(thread)) await stopThread(services(), thread.id, thread.owner, warn, `TAP job ${tap.id} was deleted`);
    await deleteTapJob(services().pool, tap.id);
    return reply.code(303).header('location', `${base(request)}/async`).type('text/plain').send('');
  };
  app.delete<{ Params: { id: string } }>('/tap/async/:id', remove);
  app.post<{ Params: { id: string } }>('/tap/async/:id', async (request, reply) => {
    const { values, files } = paramsOf(request);
    if (values.get('ACTION')?.toUpperCase() === 'DELETE') return remove(request, reply);
    // Parameters posted to the job itself (UWS 1.1 lets a client set them here too).
    const { tap } = await load(request);
    await setParams(tap, values, files, abortOnLeave(reply).signal);
    const phase = values.get('PHASE');
    if (phase !== undefined) await setPhase(request, phase);
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
      await runTapJob(runContext(request), tap, caller(request));
    } else if (p === 'ABORT') {
      await abort(tap, job, thread);
    } else throw invalidArgument('PHASE', `must be RUN or ABORT, not "${value.slice(0, 40)}"`);
  };
  /** ABORT: cancel what the job runs, or end it ABORTED if it runs nothing yet (PENDING, claimed by a RUN, or a local run). */
  const abort = async (tap: TapJobRow, job: JobRow | undefined, thread: ThreadRow | undefined) => {
    if (job && !isTerminal(job.state)) await services().jobs.cancel(job.id, job.owner);
    else if (threadRunning(thread)) await services().threads.cancel(thread.id, thread.owner);
    else if (!tap.jobId && !tap.threadJoin && !(await abortUnlinkedTapJob(services().pool, tap.id))) {
      // A RUN linked it between our read and our update: abort what it became.
      const now = await tapJobById(services().pool, tap.id, tap.owner);
      if (now?.jobId) await stopJob(services(), now.jobId, now.owner, warn, `TAP job ${tap.id} was aborted`);
      if (now?.threadId) await stopThread(services(), now.threadId, now.owner, warn, `TAP job ${tap.id} was aborted`);
    }
  };

  app.get<{ Params: { id: string } }>('/tap/async/:id/executionduration', async (request, reply) => reply.type('text/plain').send(String((await load(request)).tap.executionDuration)));
  app.post<{ Params: { id: string } }>('/tap/async/:id/executionduration', async (request, reply) => {
    const { tap } = await load(request);
    // 0 (unlimited) and anything over the longest are kept as the longest (UWS lets the service choose).
    await setTapJobTimes(services().pool, tap.id, { executionDuration: executionDurationOf(paramsOf(request).values.get('EXECUTIONDURATION') ?? '') });
    return reply.code(303).header('location', jobUrl(request, tap.id)).type('text/plain').send('');
  });
  app.get<{ Params: { id: string } }>('/tap/async/:id/destruction', async (request, reply) => reply.type('text/plain').send((await load(request)).tap.destruction.toISOString()));
  app.post<{ Params: { id: string } }>('/tap/async/:id/destruction', async (request, reply) => {
    const { tap } = await load(request);
    // A time further than the longest retention is kept as that (the job document says which).
    await setTapJobTimes(services().pool, tap.id, { destruction: destructionOf(paramsOf(request).values.get('DESTRUCTION') ?? '') });
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
    await setParams(tap, values, files, abortOnLeave(reply).signal);
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
      // A query of local tables ran at RUN; its result was kept.
      const kept = await localResultOf(services().pool, tap.id);
      if (!kept) throw new ConstellationError('NOT_FOUND', `job ${tap.id} completed before this service kept the results of queries of its own tables; create and run it again`);
      return reply.type(kept.contentType).send(kept.bytes);
    }
    const abort = abortOnLeave(reply);
    return answer(reply, await jobAnswer(services(), job, responseFormatOf(tap.params.RESPONSEFORMAT ?? tap.params.FORMAT), abort.signal));
  });

  /** Change a PENDING job's query parameters (others are ignored); a job past PENDING (or claimed by a RUN) is INVALID_ARGUMENT. */
  async function setParams(tap: TapJobRow, values: ReadonlyMap<string, string>, files: ReadonlyMap<string, Buffer>, signal: AbortSignal): Promise<void> {
    const kept = keptParams(values);
    if (Object.keys(kept).length === 0 && files.size === 0) return;
    if (tap.phase !== 'PENDING' || tap.startedAt || tap.jobId || tap.threadJoin) throw invalidArgument('parameters', `job ${tap.id} is no longer PENDING; its parameters cannot change`);
    const upload = await uploadToKeep(values, files, urlReader(signal));
    const changed = await updatePendingTapJob(services().pool, tap, { params: { ...tap.params, ...kept }, ...(upload ? { upload } : {}) });
    if (!changed) throw invalidArgument('parameters', `job ${tap.id} is no longer PENDING; its parameters cannot change`);
  }
}

/**
 * An abort that fires when the client leaves before its answer is sent. The reply's socket, not
 * the request's: a request with a body "closes" once the body is read, long before its client goes.
 */
function abortOnLeave(reply: FastifyReply): AbortController {
  const abort = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort;
}

/** The PHASE values of a job list request: all phases when none is given, 'none' when only phases this service never reports are; an unknown one is INVALID_ARGUMENT. */
function phasesAsked(values: readonly string[]): UwsPhase[] | 'all' | 'none' {
  if (values.length === 0) return 'all';
  const asked: UwsPhase[] = [];
  for (const v of values) {
    const p = v.trim().toUpperCase();
    if (!UWS_PHASE_NAMES.some((n) => n === p)) throw invalidArgument('PHASE', `"${v.slice(0, 40)}" is not a UWS phase (one of ${UWS_PHASE_NAMES.join(', ')})`);
    if (isReportedPhase(p)) asked.push(p);
  }
  return asked.length === 0 ? 'none' : asked;
}

/** Send a result stream. */
function answer(reply: FastifyReply, result: TapAnswer): FastifyReply {
  return reply.type(result.contentType).send(replyStream(result.body));
}

/** A failed (or aborted, or unfinished) job as a VOTable error document. */
function failedJob(reply: FastifyReply, job: JobRow): FastifyReply {
  // A site's refusal of the query is the query's fault (400); the rest keep their coded status.
  const code = job.errorCode ?? 'CONSTELLATION_E_UPSTREAM';
  const status = job.state === 'ERROR' && code === 'CONSTELLATION_E_UPSTREAM' ? 400 : job.state === 'ABORTED' ? 400 : 502;
  return reply.code(status).type(VOTABLE_TYPE).send(errorVotable(job.state === 'COMPLETED' ? 'no result' : !isTerminal(job.state) ? `the job did not finish in time (${job.state})` : jobError(job), code));
}

export type { TapParams };
