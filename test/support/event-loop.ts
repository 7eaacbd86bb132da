/** Checking that long work gives the event loop its turns (issue 9: nothing holds the broker). */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'vitest';

/** What the event loop did while some work ran. */
export interface LoopTurns<T> {
  result: T;
  totalMs: number;
  p90Ms: number;
  worstMs: number;
  /** Runs of a 5 ms interval timer meanwhile. */
  ticks: number;
}

/** Run `work` while measuring event-loop delay and counting the turns a 5 ms timer gets. */
export async function measureLoop<T>(work: () => Promise<T>): Promise<LoopTurns<T>> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  delay.enable();
  const started = performance.now();
  try {
    const result = await work();
    const totalMs = performance.now() - started;
    return { result, totalMs, p90Ms: delay.percentile(90) / 1e6, worstMs: delay.max / 1e6, ticks };
  } finally {
    delay.disable();
    clearInterval(timer);
  }
}

/**
 * The loop kept turning: work done in slices of a few ms. The bounds leave room for GC pauses and
 * a CPU shared with a hog and a parallel suite; done in one piece, the same work blocks for its
 * whole duration (seconds here), so its p90 would be that duration and the timer would not run.
 */
export function expectLoopTurned(m: LoopTurns<unknown>, what: string): void {
  console.log(`${what} in ${m.totalMs.toFixed(0)} ms; event-loop delay p90 ${m.p90Ms.toFixed(0)} ms, longest ${m.worstMs.toFixed(0)} ms; ${m.ticks} timer ticks meanwhile`);
  expect(m.p90Ms).toBeLessThan(250);
  expect(m.worstMs).toBeLessThan(Math.max(1000, m.totalMs / 2));
  expect(m.ticks).toBeGreaterThan(m.totalMs / 100);
}
