/** UWS execution phases and how they map onto the broker's job states. */
import type { JobState } from '../../../registry/model/adapter.js';

/** Every phase UWS 1.1 defines. */
export const UWS_PHASES = [
  'PENDING',
  'QUEUED',
  'EXECUTING',
  'COMPLETED',
  'ERROR',
  'ABORTED',
  'UNKNOWN',
  'HELD',
  'SUSPENDED',
  'ARCHIVED',
] as const;

/** A UWS execution phase. */
export type UwsPhase = (typeof UWS_PHASES)[number];

/** Reads a phase word; anything not in UWS 1.1 (any case, padded) becomes UNKNOWN. */
export function parseUwsPhase(raw: string): UwsPhase {
  const p = raw.trim().toUpperCase();
  return (UWS_PHASES as readonly string[]).includes(p) ? (p as UwsPhase) : 'UNKNOWN';
}

/** True for phases after which the job never changes again (results may still expire). */
export function isTerminalUwsPhase(phase: UwsPhase): boolean {
  return phase === 'COMPLETED' || phase === 'ERROR' || phase === 'ABORTED' || phase === 'ARCHIVED';
}

/**
 * Maps a UWS phase (or a raw phase word, read with parseUwsPhase) onto the broker's JobState.
 * The six shared phases map to themselves; for the others:
 * - HELD → QUEUED: the run was requested but the server holds the job before it starts,
 *   which is waiting to run from the user's point of view (PENDING would invite a second RUN).
 * - SUSPENDED → EXECUTING: the job has started and the server will resume it without any
 *   client action; reporting QUEUED would move a running job backwards.
 * - ARCHIVED → ERROR: terminal, but the site has deleted the results (UWS 1.1 §2.1.3), so
 *   the broker cannot deliver them; COMPLETED would promise results that now 404.
 * - UNKNOWN → QUEUED: nothing is known, so keep the job non-terminal and let the poller's own
 *   deadline decide; never PENDING, which would invite a second RUN.
 */
export function mapUwsPhase(phase: UwsPhase | (string & {})): JobState {
  const p = parseUwsPhase(phase);
  switch (p) {
    case 'PENDING':
    case 'QUEUED':
    case 'EXECUTING':
    case 'COMPLETED':
    case 'ERROR':
    case 'ABORTED':
      return p;
    case 'HELD':
      return 'QUEUED';
    case 'SUSPENDED':
      return 'EXECUTING';
    case 'ARCHIVED':
      return 'ERROR';
    case 'UNKNOWN':
      return 'QUEUED';
  }
}
