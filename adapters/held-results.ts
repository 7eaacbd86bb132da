/**
 * Answers of synchronous queries, held in memory under a made-up site job id until the broker
 * collects them (once), dropped unread after a while. The TAP and CasJobs job hooks share it.
 */
import { ConstellationError } from '../registry/model/errors.js';

/** How long an answer waits to be collected. */
const HOLD_MS = 5 * 60_000;

/** Held answers whose ids start with `prefix`; `onDrop` releases one nobody collected. */
export class HeldResults<T> {
  private readonly held = new Map<string, { value: T; timer: NodeJS.Timeout }>();
  private counter = 0;

  constructor(
    readonly prefix: string,
    private readonly onDrop: (value: T) => void = () => {},
  ) {}

  /** True when `siteJobId` names a held answer (collected or not). */
  owns(siteJobId: string): boolean {
    return siteJobId.startsWith(this.prefix);
  }

  /** Hold `value` and return its id. */
  hold(value: T): string {
    const id = `${this.prefix}${Date.now().toString(36)}-${++this.counter}`;
    const timer = setTimeout(() => {
      this.held.delete(id);
      this.onDrop(value);
    }, HOLD_MS);
    timer.unref();
    this.held.set(id, { value, timer });
    return id;
  }

  /** True while the answer waits to be collected. */
  has(id: string): boolean {
    return this.held.has(id);
  }

  /** Collect the answer (it is handed out once); undefined when it is gone. */
  take(id: string): T | undefined {
    const h = this.held.get(id);
    if (!h) return undefined;
    this.held.delete(id);
    clearTimeout(h.timer);
    return h.value;
  }

  /** Collect the answer, or NOT_FOUND when it is no longer held. */
  collect(id: string): T {
    const value = this.take(id);
    if (value === undefined) throw new ConstellationError('NOT_FOUND', `the synchronous result ${id} is no longer held`);
    return value;
  }

  /** The status of a held answer: done while it waits, an error once it is gone. */
  status(id: string, phase: string): { state: 'COMPLETED' | 'ERROR'; sitePhase: string; error?: string } {
    if (this.held.has(id)) return { state: 'COMPLETED', sitePhase: phase };
    return { state: 'ERROR', sitePhase: 'UNKNOWN', error: 'the synchronous result is no longer held' };
  }
}
