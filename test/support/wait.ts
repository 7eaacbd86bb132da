/**
 * Waiting in tests for something to happen (a job state, a harvest record, a request at a
 * simulated site, a child process becoming ready): ask again until the answer is the awaited
 * one. The limits only guard against hanging forever, so they are generous: CI and a new
 * user's laptop are slower than a quiet machine, and a wait that follows the event costs
 * nothing when the event comes at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Limit of one wait for an event in this process's servers. */
export const PATIENCE_MS = 120_000;

/** Limit for a child process (tsx compiling, a database starting) to get ready or to finish. */
export const CHILD_PATIENCE_MS = 180_000;

/**
 * Vitest timeout for a test that waits for events: above PATIENCE_MS, so a wait that gives up
 * reports its own message (what it waited for, the last answer) rather than vitest's timeout.
 */
export const WAITING_TEST_MS = PATIENCE_MS + 60_000;

/**
 * Bound for work that takes milliseconds on a quiet machine and must be "at once" (a refusal
 * by a cap, the longest /healthz stall during an attack): wide enough for a machine loaded by a
 * CPU hog and a parallel suite, far below the tens of seconds to minutes of the bugs it guards.
 * What each takes is measured in bench/attacks.ts, not here.
 */
export const AT_ONCE_MS = 5_000;

export interface WaitOptions<T> {
  /** Give up after this long (default PATIENCE_MS). */
  timeoutMs?: number;
  /** Pause between two questions (default 50 ms). */
  intervalMs?: number;
  /** What was awaited, for the error when the limit passes; given the last answer. */
  describe?: (last: T) => string;
}

/**
 * Call `probe` until `done(answer)` holds and resolve to that answer; after `timeoutMs` throw,
 * saying what was awaited and what the last answer was. A probe that throws ends the wait
 * (catch inside the probe what should count as "not yet").
 */
export async function waitUntil<T>(probe: () => T | Promise<T>, done: (answer: T) => boolean, options: WaitOptions<T> = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? PATIENCE_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if (done(answer)) return answer;
    if (Date.now() >= deadline) {
      const what = options.describe ? options.describe(answer) : `condition not met (last answer: ${preview(answer)})`;
      throw new Error(`${what} after ${timeoutMs} ms`);
    }
    await sleep(options.intervalMs ?? 50);
  }
}

/** `promise`, or a rejection saying `what` did not happen within `timeoutMs` (default PATIENCE_MS). */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = PATIENCE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

class StartFailed extends Error {}

/** The `status` of a JSON body, if it has one. */
function statusOf(body: string): unknown {
  try {
    return (JSON.parse(body) as { status?: unknown } | null)?.status;
  } catch {
    return undefined;
  }
}

/**
 * Wait until `${baseUrl}/readyz` answers 200. A refused connection (the port is not open yet)
 * and a 503 (open, still starting: migrations, seeds) both mean "not yet". `exited` is asked
 * before each try; when it returns a reason (the process died) the wait fails at once with it.
 */
export async function waitForReady(baseUrl: string, options: { timeoutMs?: number; exited?: () => string | undefined } = {}): Promise<void> {
  let last = 'no answer yet';
  await waitUntil(
    async () => {
      const reason = options.exited?.();
      if (reason !== undefined) throw new Error(reason);
      try {
        // One try must not outlive the whole wait: a server that accepts but never answers is "not yet".
        const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
        const body = await res.text();
        last = `${res.status} ${body}`;
        if (res.status === 200) return true;
        // A start that failed for good says so; waiting longer would not help.
        if (statusOf(body) === 'failed') throw new StartFailed(`${baseUrl} failed to start: ${body}`);
        return false;
      } catch (err) {
        if (err instanceof StartFailed) throw err;
        last = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        return false;
      }
    },
    (ready) => ready,
    { timeoutMs: options.timeoutMs ?? CHILD_PATIENCE_MS, intervalMs: 100, describe: () => `${baseUrl}/readyz not 200 (last: ${last})` },
  );
}

function preview(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
  } catch {
    return String(value);
  }
}
