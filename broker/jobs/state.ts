/** The job state machine: which transitions are legal, which states are final, and how a site's status maps onto ours. */
import type { JobState, SiteJobStatus } from '../../registry/model/adapter.js';

export type { JobState };

/** Every job state, in lifecycle order. */
export const JOB_STATES: readonly JobState[] = ['PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'];

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = ['COMPLETED', 'ERROR', 'ABORTED'];

/** States the poller still watches. */
export const ACTIVE_STATES: readonly JobState[] = ['PENDING', 'QUEUED', 'EXECUTING'];

// A site may put an executing job back in its queue (UWS HELD/SUSPENDED), so EXECUTING → QUEUED is allowed.
const LEGAL: Record<JobState, readonly JobState[]> = {
  PENDING: ['QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'],
  QUEUED: ['EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'],
  EXECUTING: ['QUEUED', 'COMPLETED', 'ERROR', 'ABORTED'],
  COMPLETED: [],
  ERROR: [],
  ABORTED: [],
};

/** True when `state` is final. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** True when a job may move from `from` to `to` (staying put is not a transition). */
export function isLegalTransition(from: JobState, to: JobState): boolean {
  return LEGAL[from].includes(to);
}

/** The states from which `to` may be reached. */
export function legalFrom(to: JobState): JobState[] {
  return JOB_STATES.filter((from) => LEGAL[from].includes(to));
}

/**
 * Our state for what a site reports. A site's PENDING is a job it has accepted and not yet
 * started, which for us is QUEUED: PENDING means no site holds the job yet.
 */
export function stateFromSite(status: SiteJobStatus): JobState {
  return status.state === 'PENDING' ? 'QUEUED' : status.state;
}
