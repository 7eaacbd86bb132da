/** Adapter-test helpers for simulated site jobs: the error kind a call ends in, and walking a job through its phases. */
import type { SiteJobStatus } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { waitUntil } from './wait.js';

/** 'OK', or the kind of the ConstellationError `p` rejects with (anything else is rethrown). */
export async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    if (!(err instanceof ConstellationError)) throw err;
    return err.kind;
  }
}

/**
 * Simulated jobs stay in each phase for HOLD_MS, far longer than any test: a test moves a job into
 * a phase itself and polls until the adapter reports it, so every phase is seen however slowly the
 * machine runs (a poller sampling phases of a few hundred ms misses some on a loaded machine).
 */
export const HOLD_MS = 600_000;

/**
 * Move the simulated `job` into each phase in turn (making it that many phase-lengths old) and poll
 * until the adapter reports that phase's state (or a final one); returns every answer. The limit of
 * each wait (PATIENCE_MS) only guards against a job that never gets there.
 */
export async function pollThrough(
  poll: () => Promise<SiteJobStatus>,
  job: { createdAt: number },
  steps: [phases: number, state: SiteJobStatus['state']][],
): Promise<SiteJobStatus[]> {
  const seen: SiteJobStatus[] = [];
  const answer = async () => {
    const s = await poll();
    seen.push(s);
    return s;
  };
  for (const [phases, state] of steps) {
    job.createdAt = Date.now() - phases * HOLD_MS;
    await waitUntil(answer, (s) => s.state === state || ['COMPLETED', 'ERROR', 'ABORTED'].includes(s.state), {
      intervalMs: 25, describe: () => `job not ${state}: ${JSON.stringify(seen.map((x) => x.sitePhase))}`,
    });
  }
  return seen;
}
