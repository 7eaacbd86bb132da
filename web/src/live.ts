/**
 * GraphQL subscriptions over one WebSocket at this origin's /graphql, speaking
 * graphql-transport-ws (what mercurius answers). The browser's session cookie rides on the
 * upgrade request, so the subscriber is the same caller as the page.
 */

type Message = { id?: string; type: string; payload?: unknown };

/** What a subscriber is told. */
export interface Subscriber<T> {
  next(data: T): void;
  /** The server completed the subscription (a job reached a final state). */
  complete?(): void;
  error?(message: string): void;
}

/** One shared connection, opened on first use and reopened (with its subscriptions) after a drop. */
class LiveConnection {
  private ws: WebSocket | undefined;
  private acked = false;
  private nextId = 1;
  private readonly active = new Map<string, { query: string; variables: Record<string, unknown>; sink: Subscriber<unknown> }>();
  private retryMs = 1000;

  /** Start a subscription; returns a function that stops it. */
  subscribe<T>(query: string, variables: Record<string, unknown>, sink: Subscriber<T>): () => void {
    const id = String(this.nextId++);
    this.active.set(id, { query, variables, sink: sink as Subscriber<unknown> });
    this.open();
    if (this.acked) this.send({ id, type: 'subscribe', payload: { query, variables } });
    return () => {
      if (!this.active.delete(id)) return;
      if (this.acked) this.send({ id, type: 'complete' });
    };
  }

  private open(): void {
    if (this.ws) return;
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;
    const ws = new WebSocket(url, 'graphql-transport-ws');
    this.ws = ws;
    ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.addEventListener('message', (event) => this.receive(JSON.parse(String(event.data)) as Message));
    ws.addEventListener('close', () => {
      this.ws = undefined;
      this.acked = false;
      // Subscriptions still wanted are started again on a new connection, a little later each time.
      if (this.active.size > 0) {
        setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30_000);
      }
    });
  }

  private receive(message: Message): void {
    if (message.type === 'connection_ack') {
      this.acked = true;
      this.retryMs = 1000;
      for (const [id, s] of this.active) this.send({ id, type: 'subscribe', payload: { query: s.query, variables: s.variables } });
      return;
    }
    if (message.type === 'ping') return this.send({ type: 'pong' });
    const entry = message.id ? this.active.get(message.id) : undefined;
    if (!entry) return;
    if (message.type === 'next') {
      const payload = message.payload as { data?: unknown; errors?: { message: string }[] };
      if (payload.errors?.length) entry.sink.error?.(payload.errors[0].message);
      else entry.sink.next(payload.data);
    } else if (message.type === 'error') {
      this.active.delete(message.id!);
      const errors = message.payload as { message?: string }[] | undefined;
      entry.sink.error?.(errors?.[0]?.message ?? 'subscription refused');
    } else if (message.type === 'complete') {
      this.active.delete(message.id!);
      entry.sink.complete?.();
    }
  }

  private send(message: Message): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}

/** The page's connection. */
export const live = new LiveConnection();
