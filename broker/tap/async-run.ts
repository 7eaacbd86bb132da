/**
 * PHASE=RUN of an async TAP job: claim it (it reports QUEUED), check and start its query, then
 * link the job to what the query became: a broker job, a cross-match thread, or a run of local
 * tables here (EXECUTING, its result kept in the row, bounded). Each link is conditional on the
 * job still being claimed and unlinked: an ABORT (or the clean-up) that got in between wins, and
 * what was started is stopped. A refusal (bad ADQL, unknown table…) is the job's ERROR, nothing sent.
 */
import { EventEmitter } from 'node:events';
import { ConstellationError, invalidArgument, isConstellationError } from '../../registry/model/errors.js';
import type { Identity } from '../auth/identity.js';
import type { Services } from '../factory.js';
import { runInputs } from './async-upload.js';
import { stopJob, stopThread } from './cancel.js';
import { beginLocalRun, claimTapJobRun, completeLocalRun, failTapJob, linkTapJob, linkTapThread, tapJobById, type TapJobRow } from './job-store.js';
import { MAX_LOCAL_RESULT_BYTES } from './limits.js';
import { readQueryRequest } from './request.js';
import { startQuery, type Started, type TapAnswer } from './run.js';
import type { Followed, Warn } from './wait.js';

/** What running a job needs besides the job: the services, where to log, and /tap as the caller reached it. */
export interface RunContext {
  services: Services;
  warn: Warn;
  /** An unexpected failure (logged as an error: a coded refusal is the job's ERROR only). */
  error: Warn;
  baseUrl: string;
}

/** This broker's local runs that ended, by TAP job id (a WAIT here is told at once; others reread). */
const localRunEnded = new EventEmitter();
localRunEnded.setMaxListeners(0);

/** Run PENDING job `tap` as `identity`; INVALID_ARGUMENT when it is no longer PENDING (another RUN claimed it). */
export async function runTapJob(ctx: RunContext, tap: TapJobRow, identity: Identity): Promise<void> {
  const claimed = await claimTapJobRun(ctx.services.pool, tap.id);
  if (!claimed) throw invalidArgument('PHASE', `RUN: job ${tap.id} is no longer PENDING (it was run, aborted or deleted meanwhile), and only a PENDING job can be run`);
  let started: Started;
  try {
    // The parameters as claimed: none can change after the claim.
    const { values, files } = runInputs(claimed);
    started = await startQuery(ctx.services, await readQueryRequest(values, files), identity, false, ctx.baseUrl);
  } catch (err) {
    const coded = isConstellationError(err);
    if (!coded) ctx.error(err, `starting TAP job ${tap.id} failed`);
    await failTapJob(ctx.services.pool, tap.id, coded ? `${err.code}: ${err.message}` : 'internal error');
    return;
  }
  await linkStarted(ctx, claimed, started);
}

/**
 * Link claimed job `tap` to what its query became; false (and what was started stopped) when
 * the job was aborted, timed out or deleted between the claim and now.
 */
export async function linkStarted(ctx: RunContext, tap: TapJobRow, started: Started): Promise<boolean> {
  const pool = ctx.services.pool;
  if (started.kind === 'job') {
    if (await linkTapJob(pool, tap.id, started.job.id)) return true;
    await stopJob(ctx.services, started.job.id, started.job.owner, ctx.warn, `TAP job ${tap.id} was aborted before its run was linked`);
    return false;
  }
  if (started.kind === 'thread') {
    if (await linkTapThread(pool, tap.id, started.thread.id, started.join)) return true;
    await stopThread(ctx.services, started.thread.id, started.thread.owner, ctx.warn, `TAP job ${tap.id} was aborted before its run was linked`);
    return false;
  }
  if (!(await beginLocalRun(pool, tap.id))) return false;
  // Runs on after RUN is answered (EXECUTING meanwhile); a broker stopping mid-run leaves it to the
  // clean-up, which aborts it once past its EXECUTIONDURATION.
  void runLocally(ctx, tap, started.answer);
  return true;
}

/** Run a query of local tables and keep its result (at most MAX_LOCAL_RESULT_BYTES) or its error. */
async function runLocally(ctx: RunContext, tap: TapJobRow, answer: () => Promise<TapAnswer>): Promise<void> {
  try {
    const result = await answer();
    const bytes = await bounded(result.body, MAX_LOCAL_RESULT_BYTES, tap.id);
    await completeLocalRun(ctx.services.pool, tap, { contentType: result.contentType, bytes });
  } catch (err) {
    const coded = isConstellationError(err);
    if (!coded) ctx.error(err, `the local run of TAP job ${tap.id} failed`);
    try {
      await failTapJob(ctx.services.pool, tap.id, coded ? `${err.code}: ${err.message}` : 'internal error');
    } catch (failed) {
      ctx.error(failed, `recording the failure of TAP job ${tap.id} failed`);
    }
  } finally {
    localRunEnded.emit(tap.id);
  }
}

/** The bytes of `body`, or PAYLOAD_TOO_LARGE as soon as they pass `max` (the rest is not produced). */
async function bounded(body: AsyncIterable<Uint8Array>, max: number, id: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.byteLength;
    if (n > max) throw new ConstellationError('PAYLOAD_TOO_LARGE', `the result of job ${id} is larger than ${max} bytes, the most this service keeps of a query of its own tables; select fewer columns or rows (TOP, MAXREC, WHERE)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A TAP job's own row followed (follow, wait.ts): told when a local run here ends, read again for other brokers' changes. */
export function followedTapJob(services: Services, tap: TapJobRow, warn: Warn): Followed<TapJobRow> {
  return {
    read: () => tapJobById(services.pool, tap.id, tap.owner),
    subscribe: (seen) => {
      const ended = () => {
        tapJobById(services.pool, tap.id, tap.owner).then((row) => row && seen(row), (err: unknown) => warn(err, `reading TAP job ${tap.id} after its local run failed`));
      };
      localRunEnded.on(tap.id, ended);
      return () => localRunEnded.off(tap.id, ended);
    },
    onReadError: (err) => warn(err, `reading TAP job ${tap.id} again while waiting for it failed`),
  };
}
