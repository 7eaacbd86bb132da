/** Staging as part of a broker's life: each completed job that asked for it, and any left unfinished. */
import type { JobService } from '../jobs/service.js';
import type { Stager } from './stage-result.js';
import { stageTargetOf } from './target.js';

/** How often unfinished staging (a broker stopped or died mid-way) is looked for. */
const RESUME_MS = 60_000;

/**
 * Stage every job this process sees complete with `stageTo`, and every minute take up those a
 * broker left unfinished (the Stager's claim makes each happen once). Returns the stop function,
 * which waits for staging under way.
 */
export function stageCompletedJobs(jobs: JobService, stager: Stager, onError: (err: unknown, what: string) => void): () => Promise<void> {
  const underWay = new Set<Promise<unknown>>();
  const stopFollowing = jobs.onUpdate(({ job, event }) => {
    // `event` is set on a transition this process made: the job has just become COMPLETED here.
    if (!event || job.state !== 'COMPLETED' || !stageTargetOf(job.request)) return;
    const staging: Promise<unknown> = stager.stageCompleted(job).catch((err) => onError(err, `staging the result of job ${job.id}`))
      .finally(() => underWay.delete(staging));
    underWay.add(staging);
  });
  const resume = () => void stager.resume().catch((err) => onError(err, 'resuming unfinished staging'));
  resume();
  const timer = setInterval(resume, RESUME_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    stopFollowing();
    await Promise.allSettled([...underWay]);
  };
}
