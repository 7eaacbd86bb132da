/** Which states of a broker job or cross-match thread are final (both end COMPLETED, ERROR or ABORTED). */
import type { ThreadState } from '../../registry/model/thread.js';
import { TERMINAL_STATES, type JobState } from '../jobs/state.js';

/** True when a broker job or thread in `state` will not change again. */
export function isFinished(state: JobState | ThreadState): boolean {
  return TERMINAL_STATES.some((s) => s === state);
}
