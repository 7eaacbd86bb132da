/**
 * CSV, TSV and JSON conversion off the broker's event loop, on a small pool of worker threads
 * (text-thread.ts), while this thread moves bytes. Converting a million-row result costs a
 * couple of seconds of CPU: on this thread it would delay every other request for that long.
 * A conversion takes up to two idle workers. Binary results (the usual case) are read here once
 * and their rows written by the workers (framed-conversion.ts); a TABLEDATA result, whose rows
 * cost more to read than to write, is read by each worker, each writing the rows of every other
 * piece (shared-conversion.ts). When no worker is idle the result is converted here, as
 * before, rather than queued.
 */
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';
import { FramedConversion } from './framed-conversion.js';
import { toText } from './to-text.js';
import { pool, WORKERS_PER_CONVERSION } from './text-thread-pool.js';

/**
 * Starts the text-conversion threads now rather than at the first CSV or JSON result, which is
 * converted on the event loop while they start. Resolves when they are ready.
 */
export function startTextThreads(): Promise<void> {
  return pool.warm();
}

/** Text-conversion threads ready and not converting (a conversion gives its threads back just after its end). */
export function idleTextThreads(): number {
  return pool.idleCount;
}

/**
 * The first table of a VOTable as CSV, TSV or JSON (as `toText`), converted on worker threads
 * when any is idle. Errors are the converter's (UPSTREAM_MALFORMED for a bad VOTable, UPSTREAM
 * for a QUERY_STATUS of ERROR) or the body's own; stopping early stops the conversion and the
 * body.
 */
export async function* textOnThread(body: AsyncIterable<Uint8Array>, format: TextFormat): AsyncIterable<Uint8Array> {
  const workers = pool.acquire(WORKERS_PER_CONVERSION);
  if (workers.length === 0) {
    yield* toText(body, format);
    return;
  }
  yield* new FramedConversion(workers, body, format).texts();
}
