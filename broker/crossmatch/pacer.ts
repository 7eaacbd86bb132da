/** Gives the event loop a turn every few milliseconds of matching, and stops on abort. */
import { setImmediate as turn } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

/** Longest stretch of synchronous work between event-loop turns, in milliseconds. */
const SLICE_MS = 10;

/** Paces a long computation: `due()` is cheap to call often; `pause()` yields and checks the signal. */
export class Pacer {
  private last = performance.now();

  constructor(private readonly signal: AbortSignal | undefined) {}

  /** True when a turn is owed (or the signal fired). */
  due(): boolean {
    return this.signal?.aborted === true || performance.now() - this.last >= SLICE_MS;
  }

  /** Yields to the event loop once, then throws `signal.reason` if aborted. */
  async pause(): Promise<void> {
    this.signal?.throwIfAborted();
    await turn();
    this.signal?.throwIfAborted();
    this.last = performance.now();
  }

  /** Throws `signal.reason` if aborted. */
  check(): void {
    this.signal?.throwIfAborted();
  }
}
