/** The one place `pg` is configured: pools, typed queries, transactions. */
import pg from 'pg';
import { ConstellationError } from '../model/errors.js';

/** Anything that runs a query: a pool or a checked-out client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

// int8 counts (rows, bytes) stay below 2^53 in practice; numbers are what GraphQL and JSON want.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PoolOptions {
  max?: number;
  /** How long to wait for a connection before DATABASE (default 10 s). */
  connectTimeoutMs?: number;
  /** Sees every statement text (tests count statements). */
  onQuery?: (sql: string) => void;
  /**
   * Run each pool-level statement inside its own BEGIN/COMMIT. The embedded server
   * multiplexes many connections onto one session and keeps a transaction's messages
   * together, but not the Parse/Bind/Execute messages of statements outside one.
   */
  wrapStatements?: boolean;
  /**
   * False: each new connection runs `SET jit = off`. PostgreSQL compiles a statement whose
   * estimated cost passes jit_above_cost, which a registry just loaded (before autovacuum has
   * analysed it) reaches for a 100-row read: 6 to 10 ms of compiling for under 1 ms of work.
   */
  jit?: boolean;
}

/**
 * A client that turns JIT off as part of connecting: a failed SET fails the connection (the pool
 * hands the caller that error), and the statement counters, installed once connected, never see it.
 */
class JitOffClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
  override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
    const connected = super.connect().then(() => this.query('SET jit = off')).then(() => this);
    if (callback === undefined) return connected;
    const done = callback as (err: Error | null, c?: pg.Client) => void;
    connected.then((c) => done(null, c), (err: Error) => done(err));
  }
}

/** The pool's event for a lost connection (see createPool and onConnectionLost). */
const CONNECTION_LOST = Symbol('a pooled connection was lost');

/**
 * Calls `listener` with the error of each connection of `pool` that its server ends, once per
 * connection, idle or checked out (the pool replaces it); returns what stops the calls.
 */
export function onConnectionLost(pool: pg.Pool, listener: (err: Error) => void): () => void {
  const events = pool as unknown as NodeJS.EventEmitter;
  events.on(CONNECTION_LOST, listener);
  return () => events.off(CONNECTION_LOST, listener);
}

/** Open a pool on `url`. */
export function createPool(url: string, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url, max: options.max ?? 10, types, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    ...(options.jit === false ? { Client: JitOffClient as unknown as new () => pg.ClientBase } : {}),
  });
  // A client that loses its server (PostgreSQL restarting, a connection terminated by an
  // administrator, a failover) must not crash the process. pg-pool listens for an idle client's
  // errors only, re-emitting them as the pool's 'error', and an 'error' event nobody listens to
  // is thrown; so every client gets a listener of its own, which reports its loss once, idle or
  // checked out, to onConnectionLost. A holder learns of it all the same: the statement running
  // then fails with it, and any later one as not queryable (DATABASE, 503); the pool drops the
  // client when it is released.
  pool.on('connect', (client) => {
    // A lost connection may emit twice (the server's message, then the socket's end): one report.
    let reported = false;
    client.on('error', (err) => {
      if (reported) return;
      reported = true;
      pool.emit(CONNECTION_LOST, err);
    });
  });
  // Reported by the client's own listener above.
  pool.on('error', () => {});
  if (options.wrapStatements) {
    (pool as unknown as { query: unknown }).query = (text: string, values?: unknown[]) => withTransaction(pool, (client) => client.query(text, values));
  }
  if (options.onQuery) {
    const onQuery = options.onQuery;
    const originalQuery = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      onQuery(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text));
      return originalQuery(...args);
    };
    pool.on('connect', (client) => {
      const clientQuery = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
        onQuery(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: string }).text));
        return clientQuery(...args);
      };
    });
  }
  // Last, so it covers the wrappers above: a lost server is DATABASE (503) for every caller.
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
    const out = query(...args);
    return out instanceof Promise ? out.catch((err: unknown) => { throw databaseError(err); }) : out;
  };
  return pool;
}

// SQLSTATE classes and codes that say "the database cannot be used now", not "this statement is wrong".
const UNAVAILABLE_STATES = /^(08|53|57P0[1-3]|3D000)/;
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|not queryable|Cannot use a pool after calling end/i;

/** True when `err` says the database cannot be reached or used right now (refused, dropped, shutting down, gone). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof ConstellationError) return false;
  const code = String((err as { code?: unknown }).code ?? '');
  if (UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_STATES.test(code)) return true;
  if (err instanceof AggregateError && err.errors.some(isDatabaseUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}

/** `err` as CONSTELLATION_E_DATABASE when the database is unavailable; any other error unchanged. */
export function databaseError(err: unknown): unknown {
  if (!isDatabaseUnavailable(err)) return err;
  const code = (err as { code?: unknown }).code;
  return new ConstellationError('DATABASE', `database unavailable${code ? ` (${String(code)})` : ''}: ${(err as Error).message}`, { cause: err });
}

/** Run `fn` inside one transaction on one client; rolls back on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: { isolation?: 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE'; readOnly?: boolean } = {},
): Promise<T> {
  const client = await connect(pool);
  let rollbackFailed = false;
  try {
    await client.query(`BEGIN ISOLATION LEVEL ${options.isolation ?? 'READ COMMITTED'}${options.readOnly ? ' READ ONLY' : ''}`);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // The caller gets the statement's error; a ROLLBACK that fails too leaves the connection in
    // no known state, so the pool is told to drop it rather than hand it out again.
    await client.query('ROLLBACK').catch(() => {
      rollbackFailed = true;
    });
    throw databaseError(err);
  } finally {
    client.release(rollbackFailed);
  }
}

/** Check out a client, translating connection failures into DATABASE errors. */
export async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    throw new ConstellationError('DATABASE', `database unreachable: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * LISTEN on `channel` over a connection of its own (so the pool keeps its size), calling
 * `onPayload` per notification. A lost connection is reopened after a pause and `onConnected`
 * runs again, so the caller can catch up on what it missed. Returns the function that stops it.
 */
export function listenChannel(
  pool: pg.Pool,
  channel: string,
  handlers: { onPayload: (payload: string) => void; onConnected?: () => void; onError?: (err: unknown) => void },
  retryMs = 1000,
): () => Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new ConstellationError('INVALID_ARGUMENT', `"${channel}" is not a plain channel name`);
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const open = async (): Promise<void> => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: pool.options.connectionString, types });
    client = c;
    const retry = (err: unknown) => {
      if (stopped || client !== c) return;
      client = undefined;
      handlers.onError?.(err);
      void c.end().catch(() => {});
      timer = setTimeout(() => void open(), retryMs);
    };
    c.on('error', retry);
    c.on('notification', (n) => {
      if (n.channel === channel) handlers.onPayload(n.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (!stopped) handlers.onConnected?.();
    } catch (err) {
      retry(err);
    }
  };
  void open();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await client?.end().catch(() => {});
  };
}
