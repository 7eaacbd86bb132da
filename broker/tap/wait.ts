/**
 * Following something that changes (a broker job, a cross-match thread, a TAP job's own row)
 * until a condition holds: told at once of this broker's changes, and reading it again every
 * second for changes another broker made. One waiter serves /tap/sync, WAIT and the result reads.
 */

/** Log a failure that is not the caller's answer (a warning, with what failed). */
export type Warn = (err: unknown, what: string) => void;

/** Where the followed value comes from. */
export interface Followed<T> {
  /** The value as stored now (undefined: gone; the last seen is kept). */
  read: () => Promise<T | undefined>;
  /** Be told of this broker's changes; returns the unsubscribe. */
  subscribe: (seen: (value: T) => void) => () => void;
  /** A failed read again (the next second reads again); logged by the caller. */
  onReadError: (err: unknown) => void;
}

const REREAD_MS = 1000;

/**
 * The value once `done(value)` holds, or the latest seen when `timeoutMs` runs out or `signal`
 * aborts (at most one read a second per waiter).
 */
export function follow<T>(initial: T, source: Followed<T>, done: (value: T) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  if (done(initial) || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(initial);
  return new Promise<T>((resolve) => {
    let latest = initial;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      stop();
      clearTimeout(timer);
      clearInterval(reread);
      signal?.removeEventListener('abort', finish);
      resolve(latest);
    };
    const seen = (value: T) => {
      if (finished) return;
      latest = value;
      if (done(value)) finish();
    };
    const stop = source.subscribe(seen);
    const timer = setTimeout(finish, timeoutMs);
    const reread = setInterval(() => {
      source.read().then((value) => value !== undefined && seen(value), source.onReadError);
    }, REREAD_MS);
    signal?.addEventListener('abort', finish, { once: true });
  });
}
