/**
 * GraphQL subscriptions in the metrics. They never pass the HTTP hooks (they live on a
 * WebSocket), and mercurius tells of their end only when the client stops one, not when its
 * stream ends or its connection closes; so each Subscription field's `subscribe` is wrapped, and
 * the stream it returns tells when it ends, however it ends.
 */
import type { GraphQLFieldResolver, GraphQLSchema } from 'graphql';
import type { BrokerMetrics } from './metrics.js';

/** Count every subscription of `schema` into `metrics`: its start, and its lifetime when it ends. Call once, after mercurius is registered. */
export function measureSubscriptions(schema: GraphQLSchema, metrics: BrokerMetrics): void {
  for (const field of Object.values(schema.getSubscriptionType()?.getFields() ?? {})) {
    const subscribe: GraphQLFieldResolver<unknown, unknown> | undefined = field.subscribe;
    if (!subscribe) continue;
    field.subscribe = async (source, args, context, info) => {
      const stream: unknown = await subscribe(source, args, context, info);
      // A refusal (an Error returned, or thrown above) started nothing.
      if (!isAsyncIterable(stream)) return stream;
      return endsTold(stream, metrics.graphqlSubscription(info.operation.name?.value));
    };
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** `stream` as it is, calling `ended` once when it ends: done, failed, returned (stopped, connection closed) or thrown into. */
function endsTold<T>(stream: AsyncIterable<T>, ended: () => void): AsyncIterableIterator<T> {
  const inner = stream[Symbol.asyncIterator]();
  const settle = <R extends IteratorResult<T>>(result: Promise<R>): Promise<R> => result.then((r) => {
    if (r.done) ended();
    return r;
  }, (err: unknown) => {
    ended();
    throw err;
  });
  return {
    next: (...args) => settle(inner.next(...args)),
    return: (value?: unknown) => {
      ended();
      return inner.return ? settle(inner.return(value)) : Promise.resolve({ done: true, value: undefined });
    },
    throw: (err?: unknown) => {
      ended();
      return inner.throw ? settle(inner.throw(err)) : Promise.reject(err);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
