/**
 * A subscription's stream of changes to one topic (mercurius's pubsub queue, a Readable), read
 * so that stopping early is quiet. Returning from `for await` over the queue itself destroys it
 * with an AbortError, which mercurius logs as an error on every finished subscription; here the
 * queue is read with next() and ended with destroy(), which raises nothing.
 */

/** One topic's changes as the pubsub gives them; destroy() ends the stream. */
export type Changes<T> = AsyncIterable<T> & { destroy?: () => void };

/** Every change until the stream ends or the reader stops; the queue is destroyed either way. */
export async function* readChanges<T>(changes: Changes<T>): AsyncGenerator<T, void, undefined> {
  const it = changes[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    changes.destroy?.();
  }
}
