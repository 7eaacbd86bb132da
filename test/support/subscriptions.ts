/** A GraphQL subscription client over WebSocket (graphql-transport-ws), as browsers and graphql-ws speak it. */
import { WebSocket } from 'undici';
import { PATIENCE_MS } from './wait.js';

type Message = { id?: string; type: string; payload?: unknown };

/** One graphql-transport-ws connection to a broker, carrying any number of subscriptions. */
export class SubscriptionClient {
  private next = 1;
  private readonly handlers = new Map<string, (message: Message) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as Message;
      if (message.id) this.handlers.get(message.id)?.(message);
    });
    ws.addEventListener('error', () => {
      for (const handle of this.handlers.values()) handle({ type: 'error', payload: 'websocket error' });
    });
  }

  /** Open the connection (with `payload` in connection_init, e.g. `{authorization}`) and wait for the server's connection_ack. */
  static async connect(brokerUrl: string, payload?: Record<string, unknown>): Promise<SubscriptionClient> {
    const ws = new WebSocket(`${brokerUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) })));
      ws.addEventListener('message', (event) => {
        const { type } = JSON.parse(String(event.data)) as Message;
        if (type === 'connection_ack') resolve();
        else reject(new Error(`expected connection_ack, got ${type}: ${String(event.data)}`));
      }, { once: true });
      ws.addEventListener('error', () => reject(new Error('websocket error')));
    });
    return new SubscriptionClient(ws);
  }

  /**
   * Run one subscription: `onData` sees each pushed payload's data; resolves with all of them when
   * the server completes it, rejects on an error message or after `timeoutMs` (a guard against
   * hanging, not a deadline for the job: default PATIENCE_MS).
   */
  run<T>(query: string, variables: Record<string, unknown>, timeoutMs: number = PATIENCE_MS, onData: (data: T) => void = () => {}): Promise<T[]> {
    const id = String(this.next++);
    const received: T[] = [];
    return new Promise<T[]>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`subscription not complete after ${timeoutMs} ms; received ${JSON.stringify(received)}`)), timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.handlers.delete(id);
        if (err) reject(err);
        else resolve(received);
      };
      this.handlers.set(id, (message) => {
        if (message.type === 'next') {
          const payload = message.payload as { data?: T; errors?: unknown };
          if (payload.errors) return finish(new Error(`subscription error: ${JSON.stringify(payload.errors)}`));
          received.push(payload.data as T);
          onData(payload.data as T);
        } else if (message.type === 'error') finish(new Error(`subscription error: ${JSON.stringify(message.payload)}`));
        else if (message.type === 'complete') finish();
      });
      this.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    });
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Subscribe to `query` on a connection of its own and collect every pushed payload's data until
 * the server completes it (or `timeoutMs` passes: default PATIENCE_MS).
 */
export async function subscribe<T>(brokerUrl: string, query: string, variables: Record<string, unknown>, timeoutMs: number = PATIENCE_MS): Promise<T[]> {
  const client = await SubscriptionClient.connect(brokerUrl);
  try {
    return await client.run<T>(query, variables, timeoutMs);
  } finally {
    client.close();
  }
}
