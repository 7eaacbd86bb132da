/**
 * The running broker as the CLI's commands reach it: its public GraphQL API and REST routes at
 * --broker / CONSTELLATION_URL / HOST:PORT, with the user's cached login token when there is
 * one. Broker errors come back as ConstellationErrors with the broker's own code; a broker that
 * does not answer is marked so the command exits 3.
 */
import { Readable } from 'node:stream';
import { ConstellationError, ErrorCodes, type ErrorKind, type Violation } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { loadConfig, parseConfig } from '../config/load.js';
import { markUnreachable } from './exit-codes.js';
import { brokerUrl, currentToken } from './login.js';
import { readLogin } from './token-cache.js';

/** fetch's (undici's) errors for a broker that was reached and then answered too slowly (its default limits: 300 s). */
const SLOW = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** A GraphQL or REST client for the running broker. */
export interface BrokerClient {
  /** The broker's base URL (no trailing slash). */
  readonly base: string;
  /** Run a GraphQL operation; its first error is thrown as a ConstellationError with the broker's code. */
  graphql<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** GET `path` (a broker path such as /results/ID?format=csv); an error answer is thrown as a ConstellationError. */
  download(path: string): Promise<{ body: Readable; contentType: string | null; length: number | null }>;
  /** Send `body` to `path` with `method` and extra headers; the parsed JSON answer, or the error it carries, thrown. */
  send(method: 'PUT' | 'POST', path: string, body: Readable | string, headers: Record<string, string>): Promise<unknown>;
}

/**
 * A client for the broker this command talks to. The cached login's token goes with every
 * request when the federation has identity and the user has logged in; without a login the
 * requests are anonymous and the broker says whether that is enough.
 */
export async function brokerClient(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<BrokerClient> {
  const base = brokerUrl(config, env);
  const auth: Record<string, string> = {};
  if (config.identity && (await readLogin(config.identity.issuer, env))) {
    auth.authorization = `Bearer ${(await currentToken(config, env)).token.reveal()}`;
  }
  const call = async (path: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(`${base}${path}`, init);
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
      const text = cause instanceof Error ? cause.message : String(cause);
      // A broker that was reached but is slow is not "no broker": only a failed connection exits 3.
      if (SLOW.has(String((cause as { code?: unknown }).code))) {
        throw new ConstellationError('UPSTREAM_TIMEOUT', `the broker at ${base} accepted the request but did not answer in time (${text})`, { cause: err });
      }
      throw markUnreachable(new ConstellationError('UPSTREAM_UNAVAILABLE', `no broker answers at ${base} (${text}); start one with constellation serve, or name it with --broker URL or CONSTELLATION_URL`, { cause: err }));
    }
  };
  return {
    base,
    async graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
      const res = await call('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ query, variables }) });
      const body = await res.json().catch(() => undefined);
      if (typeof body !== 'object' || body === null) throw notABroker(base, res.status);
      const { data, errors } = body as { data?: T | null; errors?: unknown[] };
      if (Array.isArray(errors) && errors.length > 0) throw fromBody(errors[0], res.status);
      if (data === undefined || data === null) throw fromBody(body, res.status);
      return data;
    },
    async download(path) {
      const res = await call(path, { headers: auth });
      if (!res.ok || !res.body) throw fromBody(await res.json().catch(() => undefined), res.status);
      const length = res.headers.get('content-length');
      return { body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), contentType: res.headers.get('content-type'), length: length === null ? null : Number(length) };
    },
    async send(method, path, body, headers) {
      const res = await call(path, { method, headers: { ...auth, ...headers }, body: typeof body === 'string' ? body : (Readable.toWeb(body) as ReadableStream), duplex: 'half' } as RequestInit);
      const answer = await res.json().catch(() => undefined);
      if (!res.ok) throw fromBody(answer, res.status);
      return answer;
    },
  };
}

const KIND_BY_CODE = new Map<string, ErrorKind>(Object.entries(ErrorCodes).map(([kind, { code }]) => [code, kind as ErrorKind]));

/** A ConstellationError from a broker error body (REST `{code, message}` or a GraphQL error with extensions.code). */
function fromBody(body: unknown, status: number): ConstellationError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; message?: unknown; violations?: unknown; extensions?: { code?: unknown; violations?: unknown } };
  const code = typeof b.extensions?.code === 'string' ? b.extensions.code : typeof b.code === 'string' ? b.code : undefined;
  const message = typeof b.message === 'string' ? b.message : `the broker answered HTTP ${status}`;
  const violations = Array.isArray(b.extensions?.violations) ? b.extensions.violations : Array.isArray(b.violations) ? b.violations : [];
  const kind = (code && KIND_BY_CODE.get(code)) || kindOfStatus(status);
  return new ConstellationError(kind, message, { violations: violations.filter(isViolation) });
}

function kindOfStatus(status: number): ErrorKind {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status >= 400 && status < 500) return 'INVALID_ARGUMENT';
  return 'INTERNAL';
}

function isViolation(v: unknown): v is Violation {
  const x = v as Partial<Violation>;
  return typeof v === 'object' && v !== null && typeof x.path === 'string' && typeof x.rule === 'string' && typeof x.message === 'string';
}

/** Something answered, but not with a broker's JSON: the wrong address, so treated as no broker. */
function notABroker(base: string, status: number): ConstellationError {
  return markUnreachable(new ConstellationError('UPSTREAM_UNAVAILABLE', `what answers at ${base} is not a Constellation broker (HTTP ${status}, not GraphQL JSON); name the broker with --broker URL or CONSTELLATION_URL`));
}

/**
 * The federation file for a command that only talks to a running broker: the usual one
 * (--config, CONSTELLATION_CONFIG, ./federation.yaml), or, when none was named and there is no
 * ./federation.yaml, an empty federation: the broker comes from --broker or CONSTELLATION_URL
 * and the requests are anonymous (no identity, so no cached login to send).
 */
export async function clientConfig(env: NodeJS.ProcessEnv, path: string | undefined): Promise<Config> {
  try {
    return await loadConfig(env, path);
  } catch (err) {
    const missing = (err as { cause?: { code?: unknown } }).cause?.code === 'ENOENT';
    if (!missing || path !== undefined || env.CONSTELLATION_CONFIG !== undefined) throw err;
    return parseConfig('federation: { name: remote }\nsites: []\n', env);
  }
}
