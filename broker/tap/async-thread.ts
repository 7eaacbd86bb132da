/**
 * An async TAP job that runs as a cross-match thread (a positional join across sites, issue 12):
 * the thread it became, and its result read back with the mapping fixed at RUN
 * (crossmatch-join.ts), in the job's RESPONSEFORMAT and under its MAXREC, as /tap/sync answers
 * the same query. WAIT follows the thread with follow (wait.ts).
 */
import { ConstellationError } from '../../registry/model/errors.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import type { Services } from '../factory.js';
import { joinAnswer } from './crossmatch-run.js';
import { isFinished } from './finished.js';
import { responseFormatOf } from './formats.js';
import type { TapJobRow } from './job-store.js';
import { maxrecOf } from './request.js';
import type { TapAnswer } from './run.js';

/** Whether the thread may still change without the caller. */
export function threadRunning(thread: ThreadRow | undefined): thread is ThreadRow {
  return thread !== undefined && !isFinished(thread.state);
}

/** The thread `tap` became (undefined before RUN, for a job that is no thread, or when the thread is gone). */
export async function threadOfTapJob(services: Services, tap: TapJobRow): Promise<ThreadRow | undefined> {
  return tap.threadId ? services.threads.get(tap.threadId, tap.owner) : undefined;
}

/** A COMPLETED thread's result as the job's query rows, in its RESPONSEFORMAT, cut at its MAXREC (OVERFLOW) or TOP. */
export async function tapThreadAnswer(tap: TapJobRow, thread: ThreadRow): Promise<TapAnswer> {
  if (!tap.threadJoin) throw new ConstellationError('INTERNAL', `TAP job ${tap.id} did not run as a cross-match thread`);
  const format = responseFormatOf(tap.params.RESPONSEFORMAT ?? tap.params.FORMAT);
  return joinAnswer(thread, tap.threadJoin, format, maxrecOf(tap.params.MAXREC));
}
