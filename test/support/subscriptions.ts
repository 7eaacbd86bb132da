/** A GraphQL subscription client over WebSocket (graphql-transport-ws), as browsers and graphql-ws speak it. */
import { WebSocket } from 'undici';

/**
 * Subscribe to `query` at `brokerUrl`/graphql and collect every `next` payload's data until the
 * server completes the subscription; rejects on an error message or after `timeoutMs`.
 */
export function subscribe<T>(brokerUrl: string, query: string, variables: Record<string, unknown>, timeoutMs: number): Promise<T[]> {
  const ws = new WebSocket(`${brokerUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const received: T[] = [];
  return new Promise<T[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error(`subscription not complete after ${timeoutMs} ms; received ${JSON.stringify(received)}`));
    }, timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      ws.close();
      if (err) reject(err);
      else resolve(received);
    };
    ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.addEventListener('error', () => finish(new Error('websocket error')));
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { type: string; payload?: { data?: T; errors?: unknown } | unknown[] };
      if (message.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
      else if (message.type === 'next') {
        const payload = message.payload as { data?: T; errors?: unknown };
        if (payload.errors) finish(new Error(`subscription error: ${JSON.stringify(payload.errors)}`));
        else received.push(payload.data as T);
      } else if (message.type === 'error') finish(new Error(`subscription error: ${JSON.stringify(message.payload)}`));
      else if (message.type === 'complete') finish();
    });
  });
}
