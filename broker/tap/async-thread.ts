/**
 * An async TAP job that runs as a cross-match thread (a positional join across sites, issue 12):
 * the thread it became, WAIT following that thread, and its result read back with the mapping
 * fixed at RUN (crossmatch-join.ts), in the job's RESPONSEFORMAT and under its MAXREC, as
 * /tap/sync answers the same query.
 */
import { ConstellationError } from '../../registry/model/errors.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import type { Services } from '../factory.js';
import { joinAnswer, waitForThread } from './crossmatch-run.js';
import { responseFormatOf } from './formats.js';
import type { TapJobRow } from './job-store.js';
import { maxrecOf } from './request.js';
import type { TapAnswer } from './run.js';
import { phaseOf, type UwsPhase } from './uws.js';

const FINISHED = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

/** Whether the thread may still change without the caller. */
export function threadRunning(thread: ThreadRow | undefined): thread is ThreadRow {
  return thread !== undefined && !FINISHED.has(thread.state);
}

/** The thread `tap` became (undefined before RUN, for a job that is no thread, or when the thread is gone). */
export async function threadOfTapJob(services: Services, tap: TapJobRow): Promise<ThreadRow | undefined> {
  return tap.threadId ? services.threads.get(tap.threadId, tap.owner) : undefined;
}

/**
 * The thread once its UWS phase is no longer `phase`, or as it is when `ms` runs out or `signal`
 * aborts. waitForThread ends on a final state only; QUEUED → EXECUTING is seen by asking again
 * each second (bounded: at most one read a second per waiting client).
 */
export async function waitUntilThreadPhaseChanges(services: Services, tap: TapJobRow, thread: ThreadRow, phase: UwsPhase, ms: number, signal: AbortSignal): Promise<ThreadRow> {
  const until = Date.now() + ms;
  let current = thread;
  while (Date.now() < until && !signal.aborted) {
    current = await waitForThread(services, current, Math.min(1000, until - Date.now()), signal);
    const fresh = FINISHED.has(current.state) ? current : ((await services.threads.get(current.id, current.owner)) ?? current);
    current = fresh;
    if (phaseOf(tap, null, current) !== phase) return current;
  }
  return current;
}

/** A COMPLETED thread's result as the job's query rows, in its RESPONSEFORMAT, cut at its MAXREC (OVERFLOW) or TOP. */
export async function tapThreadAnswer(tap: TapJobRow, thread: ThreadRow): Promise<TapAnswer> {
  if (!tap.threadJoin) throw new ConstellationError('INTERNAL', `TAP job ${tap.id} did not run as a cross-match thread`);
  const format = responseFormatOf(tap.params.RESPONSEFORMAT ?? tap.params.FORMAT);
  return joinAnswer(thread, tap.threadJoin, format, maxrecOf(tap.params.MAXREC));
}
