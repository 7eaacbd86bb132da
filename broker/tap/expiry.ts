/**
 * The async TAP jobs' clean-up, run by every broker every minute (scheduleTapUpkeep, started in
 * broker/app.ts):
 *  - UWS DESTRUCTION: jobs past their destruction time are hidden at once (job-store.ts reads
 *    only live ones) and deleted here; a job still running is cancelled, its broker job or
 *    cross-match thread would otherwise go on reading sites for a result nobody can fetch.
 *  - UWS EXECUTIONDURATION: a job running past it is aborted here, whether or not anyone reads it.
 * Any broker may run either at any time: each row is taken by one of them (DELETE … RETURNING,
 * UPDATE … WHERE timed_out_at IS NULL RETURNING), and that one alone cancels what it runs.
 */
import type { Services } from '../factory.js';
import { stopJob, stopThread } from './cancel.js';
import { deleteExpiredTapJobs, timeOutOverdueTapJobs, type EndedTapJob } from './job-store.js';
import type { Warn } from './wait.js';

const BATCH = 100;
/** How often the clean-up runs: a job runs at most this much past its EXECUTIONDURATION. */
export const TAP_UPKEEP_MS = 60_000;

/** Stop what each of `rows` runs. */
async function stopAll(services: Services, rows: readonly EndedTapJob[], warn: Warn, why: string): Promise<void> {
  for (const row of rows) {
    if (row.threadId) await stopThread(services, row.threadId, row.owner, warn, `TAP job ${row.id} ${why}`);
    if (row.jobId) await stopJob(services, row.jobId, row.owner, warn, `TAP job ${row.id} ${why}`);
  }
}

/** A warning that reports through `onError` (tests and callers that give none: nothing). */
const warnVia = (onError?: (err: unknown) => void): Warn => (err) => onError?.(err);

/** Delete every TAP job past its destruction time and cancel what it still runs; returns how many were deleted. */
export async function destroyExpiredTapJobs(services: Services, onError?: (err: unknown) => void): Promise<number> {
  let removed = 0;
  for (;;) {
    const batch = await deleteExpiredTapJobs(services.pool, BATCH);
    removed += batch.length;
    await stopAll(services, batch, warnVia(onError), 'was destroyed');
    if (batch.length < BATCH) return removed;
  }
}

/** Abort every TAP job running past its EXECUTIONDURATION (its broker job or thread cancelled); returns how many. */
export async function abortOverdueTapJobs(services: Services, onError?: (err: unknown) => void): Promise<number> {
  let aborted = 0;
  for (;;) {
    const batch = await timeOutOverdueTapJobs(services.pool, BATCH);
    aborted += batch.length;
    await stopAll(services, batch, warnVia(onError), 'ran past its EXECUTIONDURATION');
    if (batch.length < BATCH) return aborted;
  }
}

/** Run the clean-up now and every TAP_UPKEEP_MS; returns the stop. A failure is logged through `log` and the next round goes on. */
export function scheduleTapUpkeep(services: Services, log: (err: unknown, what: string) => void): () => void {
  let running = false;
  const round = async () => {
    // One round at a time on this broker: a slow database does not pile rounds up.
    if (running) return;
    running = true;
    try {
      await destroyExpiredTapJobs(services, (err) => log(err, 'cancelling a destroyed TAP job failed')).catch((err: unknown) => log(err, 'removing destroyed TAP jobs failed'));
      await abortOverdueTapJobs(services, (err) => log(err, 'cancelling a TAP job past its EXECUTIONDURATION failed')).catch((err: unknown) => log(err, 'aborting TAP jobs past their EXECUTIONDURATION failed'));
    } finally {
      running = false;
    }
  };
  void round();
  const timer = setInterval(() => void round(), TAP_UPKEEP_MS);
  timer.unref();
  return () => clearInterval(timer);
}
