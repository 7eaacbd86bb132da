/** The phases a broker goes through between listening and ready, timed for the log and /readyz. */
import { performance } from 'node:perf_hooks';

export type PhaseState = 'pending' | 'running' | 'done' | 'failed';

/** One phase as /readyz reports it. */
export interface PhaseReport {
  name: string;
  state: PhaseState;
  /** Milliseconds spent so far (running) or in all (done, failed). */
  ms?: number;
}

/** Where phase lines go (the server's logger). */
export interface PhaseLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The broker's start, phase by phase. The port opens before the first phase, so an
 * orchestrator or a new user sees what is still starting instead of a refused connection.
 */
export class StartPhases {
  private readonly phases: { name: string; state: PhaseState; startedAt?: number; ms?: number }[];
  private readonly began = performance.now();
  private failure: unknown;

  constructor(names: readonly string[], private log?: PhaseLog) {
    this.phases = names.map((name) => ({ name, state: 'pending' as PhaseState }));
  }

  /** Send phase lines to `log` from now on (the server's logger exists only after the phases are declared). */
  logTo(log: PhaseLog): void {
    this.log = log;
  }

  /** Run `fn` as phase `name`, logging its duration; a failure marks the phase failed and is rethrown. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const phase = this.phases.find((p) => p.name === name);
    if (!phase) throw new Error(`unknown start phase "${name}"`);
    phase.state = 'running';
    phase.startedAt = performance.now();
    try {
      const result = await fn();
      phase.state = 'done';
      phase.ms = Math.round(performance.now() - phase.startedAt);
      this.log?.info({ phase: name, ms: phase.ms }, `start: ${name} in ${phase.ms} ms`);
      return result;
    } catch (err) {
      phase.state = 'failed';
      phase.ms = Math.round(performance.now() - phase.startedAt);
      this.failure = err;
      this.log?.error({ phase: name, ms: phase.ms, err }, `start: ${name} failed after ${phase.ms} ms`);
      throw err;
    }
  }

  /** True once every phase is done. */
  get ready(): boolean {
    return this.phases.every((p) => p.state === 'done');
  }

  /** True when a phase failed (the broker will not become ready). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Milliseconds since the phases were declared (the process's start, near enough). */
  elapsedMs(): number {
    return Math.round(performance.now() - this.began);
  }

  /** Every phase with its state and time, for /readyz. */
  report(): PhaseReport[] {
    const now = performance.now();
    return this.phases.map((p) => ({
      name: p.name,
      state: p.state,
      ...(p.ms !== undefined ? { ms: p.ms } : p.startedAt !== undefined ? { ms: Math.round(now - p.startedAt) } : {}),
    }));
  }

  /** The phase under way (or the first pending one), for a one-line "still starting: …". */
  current(): string | undefined {
    return (this.phases.find((p) => p.state === 'running') ?? this.phases.find((p) => p.state === 'pending'))?.name;
  }
}
