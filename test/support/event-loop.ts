/** Checking that long work gives the event loop its turns (issue 9: nothing holds the broker). */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'vitest';

/** What the event loop did while some work ran. */
export interface LoopTurns<T> {
  result: T;
  totalMs: number;
  /** CPU time this process spent meanwhile (user and system, every thread). */
  cpuMs: number;
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
  const cpuBefore = process.cpuUsage();
  try {
    const result = await work();
    const totalMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    return { result, totalMs, cpuMs: (cpu.user + cpu.system) / 1000, p90Ms: delay.percentile(90) / 1e6, worstMs: delay.max / 1e6, ticks };
  } finally {
    delay.disable();
    clearInterval(timer);
  }
}

/**
 * The loop kept turning: work done in slices of a few ms. Done in one piece, the same work blocks
 * for its whole duration (seconds here): the timer does not run, which the tick count catches (the
 * delay histogram then has no sample at all, so its p90 reads 0 and bounds only sliced work). The
 * bounds leave room for GC pauses, and they stretch with the CPU the process was denied:
 * slices that cut the work by size take longer in wall time on a starved CPU (a suite beside a
 * hog, at low priority, took 14 times as long). So the turns are counted against the CPU time the
 * work used, and the delays are bounded per CPU-equivalent of wall time.
 */
export function expectLoopTurned(m: LoopTurns<unknown>, what: string): void {
  const starved = Math.max(1, m.totalMs / Math.max(m.cpuMs, 1));
  console.log(`${what} in ${m.totalMs.toFixed(0)} ms (${m.cpuMs.toFixed(0)} ms of CPU); event-loop delay p90 ${m.p90Ms.toFixed(0)} ms, longest ${m.worstMs.toFixed(0)} ms; ${m.ticks} timer ticks meanwhile`);
  expect(m.p90Ms).toBeLessThan(250 * starved);
  expect(m.worstMs).toBeLessThan(Math.max(1000, m.totalMs / 2));
  expect(m.ticks).toBeGreaterThan(m.cpuMs / 100);
}
