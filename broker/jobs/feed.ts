/**
 * Every job change, for subscribers: this broker's own changes at once, and (on PostgreSQL)
 * the changes other brokers sharing the database make, through LISTEN/NOTIFY on the history
 * table's trigger.
 */
import type pg from 'pg';
import { listenChannel } from '../../registry/store/db.js';
import { jobById, type JobRow } from '../../registry/store/queries/jobs.js';
import type { JobService } from './service.js';

/** The channel migration 003's trigger notifies on. */
export const JOBS_CHANNEL = 'constellation_jobs';

// Event ids this broker published itself, so their notifications are not published twice.
const REMEMBERED = 10_000;

/** Feeds job changes to `publish`; returns the function that stops it. */
export function followJobs(
  jobs: JobService,
  pool: pg.Pool,
  publish: (job: JobRow) => void,
  options: { listen: boolean; onError?: (err: unknown) => void },
): () => Promise<void> {
  const published = new Set<number>();
  const stopLocal = jobs.onUpdate(({ job, event }) => {
    if (event) {
      published.add(event.id);
      // Sets iterate in insertion order: the oldest id goes first.
      if (published.size > REMEMBERED) published.delete(published.values().next().value!);
    }
    publish(job);
  });
  if (!options.listen) {
    return async () => {
      stopLocal();
    };
  }
  const stopListening = listenChannel(pool, JOBS_CHANNEL, {
    onPayload: (payload) => {
      let note: { jobId?: unknown; eventId?: unknown };
      try {
        note = JSON.parse(payload) as typeof note;
      } catch (err) {
        options.onError?.(err);
        return;
      }
      if (typeof note.jobId !== 'string' || published.delete(Number(note.eventId))) return;
      jobById(pool, note.jobId).then((job) => job && publish(job), options.onError);
    },
    onError: options.onError,
  });
  return async () => {
    stopLocal();
    await stopListening();
  };
}
