/**
 * UWS DESTRUCTION: async TAP jobs past their destruction time are hidden at once (job-store.ts
 * reads only live ones) and deleted here, on the broker's periodic clean-up (broker/app.ts).
 * A job still running when it is destroyed is cancelled: its broker job or cross-match thread
 * would otherwise go on reading sites for a result nobody can fetch any more.
 */
import { isConstellationError } from '../../registry/model/errors.js';
import type { Services } from '../factory.js';
import { deleteExpiredTapJobs } from './job-store.js';

const BATCH = 100;

/**
 * Delete every TAP job past its destruction time and cancel what it still runs; returns how
 * many were deleted. Any broker may run it at any time: each row is deleted by one of them
 * (DELETE … RETURNING), and that one alone cancels its job or thread.
 */
export async function destroyExpiredTapJobs(services: Services, onError?: (err: unknown) => void): Promise<number> {
  let removed = 0;
  for (;;) {
    const batch = await deleteExpiredTapJobs(services.pool, BATCH);
    for (const row of batch) {
      removed++;
      try {
        if (row.threadId) {
          const thread = await services.threads.get(row.threadId, row.owner);
          if (thread && (thread.state === 'QUEUED' || thread.state === 'RUNNING')) await services.threads.cancel(thread.id, row.owner);
        }
        if (row.jobId) {
          const job = await services.jobs.get(row.jobId, row.owner);
          if (job && !['COMPLETED', 'ERROR', 'ABORTED'].includes(job.state)) await services.jobs.cancel(job.id, row.owner);
        }
      } catch (err) {
        // Finished meanwhile (INVALID_ARGUMENT) is what was wanted; anything else is reported, and the rest go on.
        if (!(isConstellationError(err) && err.kind === 'INVALID_ARGUMENT')) onError?.(err);
      }
    }
    if (batch.length < BATCH) return removed;
  }
}
