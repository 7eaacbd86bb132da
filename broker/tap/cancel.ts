/**
 * Stopping what an async TAP job runs when nobody waits for its answer any more (its client left,
 * it was deleted, destroyed, or ran past its EXECUTIONDURATION, or an ABORT won the race with its
 * RUN). One that ended meanwhile is what was wanted; any other failure is logged with the job's id.
 */
import { isConstellationError } from '../../registry/model/errors.js';
import type { Services } from '../factory.js';
import { isFinished } from './finished.js';
import type { Warn } from './wait.js';

/** Whether `err` only says the job or thread had already ended (or gone). */
function endedMeanwhile(err: unknown): boolean {
  return isConstellationError(err) && (err.kind === 'INVALID_ARGUMENT' || err.kind === 'NOT_FOUND');
}

/** Cancel broker job `id` of `owner` unless it has ended; `why` names the occasion in the warning. */
export async function stopJob(services: Services, id: string, owner: string, warn: Warn, why: string): Promise<void> {
  try {
    const job = await services.jobs.get(id, owner);
    if (job && !isFinished(job.state)) await services.jobs.cancel(id, owner);
  } catch (err) {
    if (!endedMeanwhile(err)) warn(err, `cancelling job ${id} (${why}) failed`);
  }
}

/** Cancel cross-match thread `id` of `owner` unless it has ended. */
export async function stopThread(services: Services, id: string, owner: string, warn: Warn, why: string): Promise<void> {
  try {
    const thread = await services.threads.get(id, owner);
    if (thread && !isFinished(thread.state)) await services.threads.cancel(id, owner);
  } catch (err) {
    if (!endedMeanwhile(err)) warn(err, `cancelling thread ${id} (${why}) failed`);
  }
}
