/**
 * The one place undici is used: a shared Agent with explicit connect, headers and body
 * timeouts; retries with backoff on network errors, 5xx and 429 (honouring Retry-After);
 * conditional requests; credentials applied per request; upstream failures translated once
 * into ConstellationErrors with stable codes. Adapters get a client scoped to one site
 * (`forSite`): every URL it is asked for, and every redirect, passes that site's outbound
 * policy, answers are read only up to byte limits, and a per-site circuit breaker stops
 * hammering a site that keeps failing. A one-off policy (an upload URL a caller named) gets a
 * client that is not kept, under a circuit of its own host (`forOneOff`).
 */
import { isIP } from 'node:net';
import { finished, Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, errors as undiciErrors, request as undiciRequest, type Dispatcher } from 'undici';
import type { ByteMeter, SiteCredential } from '../registry/model/adapter.js';
import { ConstellationError, type ErrorKind } from '../registry/model/errors.js';
import { CircuitBreaker, type CircuitOptions, type CircuitOutcome } from './circuit.js';
import { guardedLookup, isPrivateAddress, OutboundPolicy, PRIVATE_ADDRESS_CODE, type SitePolicySpec } from './outbound-policy.js';

/** Largest answers read from a site, by kind (federation.yaml `limits`). */
export interface ByteLimits {
  /** A document read whole (VOSI, UWS, JSON, a harvested page): refused beyond this. */
  documentBytes: number;
  /** An error reply: at most this much is read for its excerpt, then the connection is dropped. */
  errorBodyBytes: number;
  /** A result streamed through (`body`): the stream fails beyond this. */
  resultBytes: number;
}

export const DEFAULT_LIMITS: ByteLimits = {
  documentBytes: 32 * 1024 * 1024,
  errorBodyBytes: 64 * 1024,
  resultBytes: 4 * 1024 * 1024 * 1024,
};

export const DEFAULT_CIRCUIT: CircuitOptions = { failures: 5, coolDownMs: 30_000 };

/**
 * Site clients kept (one per distinct policy), the least recently used forgotten beyond it: far
 * more than the sites of a federation, so a site's client is made again only after thousands of others.
 */
export const MAX_SCOPED_CLIENTS = 4096;

export interface HttpClientOptions {
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Attempts after the first, for idempotent requests. */
  retries?: number;
  /** First backoff delay; doubles each attempt, with jitter. */
  retryBaseMs?: number;
  /** Longest wait between attempts; a longer Retry-After fails at once. */
  maxRetryDelayMs?: number;
  userAgent?: string;
  /** Byte limits per kind of answer; unset keys keep DEFAULT_LIMITS. */
  limits?: Partial<ByteLimits>;
  /** The per-site circuit breaker (DEFAULT_CIRCUIT); `false` turns it off. */
  circuit?: Partial<CircuitOptions> | false;
}

/** The client an adapter uses for one site: the same calls as HttpClient, under that site's policy. */
export interface SiteHttp {
  request(url: string, options?: RequestOptions): Promise<HttpResponse>;
  text(url: string, options?: RequestOptions): Promise<string>;
  json<T = unknown>(url: string, options?: RequestOptions): Promise<T>;
}

export type { ByteMeter };

/** One exchange with a site as the broker's metrics and logs see it (never a query string nor a credential). */
export interface UpstreamCall {
  /** The site the request was for; undefined for an unscoped request (tests and tools). */
  siteId?: string;
  method: string;
  /** The URL's host (host:port). */
  host: string;
  /** The URL's path only: its query may carry tokens. */
  path: string;
  /** The status answered; undefined when no answer came (refused by policy, network error, timeout). */
  status?: number;
  /** From sending to the answer's headers (an error answer: to its excerpt read; a body failure: to that failure); 0 when nothing was sent. */
  durationMs: number;
  /** The stable error code when the exchange failed; undefined for an answer the caller takes (2xx, 304, redirects, accepted statuses). */
  errorCode?: string;
  /** `request`: the exchange up to its answer's headers; `body`: reading an answer's body failed afterwards. */
  phase: 'request' | 'body';
}

/** Told of every exchange with a site (the broker's metrics and logs); it must not throw, and what it throws is ignored. */
export type UpstreamObserver = (call: UpstreamCall) => void;

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  body?: string | Uint8Array | AsyncIterable<Uint8Array>;
  credential?: SiteCredential;
  signal?: AbortSignal;
  /** Validators from an earlier answer: sent as If-None-Match / If-Modified-Since. */
  conditional?: { etag?: string; lastModified?: string };
  /** Retry on failure; defaults to true for GET, HEAD, PUT and DELETE, false for POST. */
  retry?: boolean;
  /** Follow redirects (GET and HEAD only); default true. */
  followRedirects?: boolean;
  /** Statuses the caller handles itself instead of getting an error (e.g. 303, 404). */
  accept?: number[];
  meter?: ByteMeter;
}

export interface HttpResponse {
  status: number;
  url: string;
  headers: Record<string, string>;
  /** True for a 304 answer to a conditional request. */
  notModified: boolean;
  /** The body as a stream; consume it exactly once (or call `dump`). */
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  bytes(): Promise<Buffer>;
  dump(): Promise<void>;
}

const DEFAULTS: Required<Omit<HttpClientOptions, 'limits' | 'circuit'>> = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  retries: 3,
  retryBaseMs: 200,
  maxRetryDelayMs: 30_000,
  userAgent: 'constellation-broker/0.1 (+https://github.com/constellation)',
};

const MAX_REDIRECTS = 5;

/** Headers that carry a credential: never sent on after a redirect changes host. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'x-auth-token', 'x-dl-authtoken', 'proxy-authorization'];

/** An HTTP client over one undici Agent; create one per process (or per test) and close it. */
export class HttpClient implements SiteHttp {
  private readonly options: Required<Omit<HttpClientOptions, 'limits' | 'circuit'>>;
  private readonly limits: ByteLimits;
  /** Connects anywhere: for sites whose own url is on a private address (and unscoped use). */
  private readonly agent: Agent;
  /** Refuses, at connect time, names that resolve to private addresses. */
  private readonly guardedAgent: Agent;
  private readonly circuit?: CircuitBreaker;
  /** The circuits of one-off clients, by host: apart, so hosts callers name never crowd out the sites' circuits. */
  private readonly oneOffCircuit?: CircuitBreaker;
  /** Site clients by policy key, least recently used first. */
  private readonly scoped = new Map<string, SiteHttp>();
  private readonly observers = new Set<UpstreamObserver>();

  constructor(options: HttpClientOptions = {}) {
    const { limits, circuit, ...rest } = options;
    this.options = { ...DEFAULTS, ...stripUndefined(rest) };
    this.limits = { ...DEFAULT_LIMITS, ...stripUndefined(limits ?? {}) };
    if (circuit !== false) {
      this.circuit = new CircuitBreaker({ ...DEFAULT_CIRCUIT, ...stripUndefined(circuit ?? {}) });
      this.oneOffCircuit = new CircuitBreaker({ ...DEFAULT_CIRCUIT, ...stripUndefined(circuit ?? {}) }, 'host');
    }
    const agentOptions = {
      headersTimeout: this.options.headersTimeoutMs,
      bodyTimeout: this.options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    };
    this.agent = new Agent({ ...agentOptions, connect: { timeout: this.options.connectTimeoutMs } });
    this.guardedAgent = new Agent({ ...agentOptions, connect: { timeout: this.options.connectTimeoutMs, lookup: guardedLookup } });
  }

  /**
   * The client for one site: every URL (and redirect) must pass the site's outbound policy,
   * the credential goes only to the site's own and allowed hosts, and the site's circuit
   * breaker applies. One scoped client per distinct policy is kept, at most MAX_SCOPED_CLIENTS.
   */
  forSite(spec: SitePolicySpec): SiteHttp {
    const key = OutboundPolicy.key(spec);
    let client = this.scoped.get(key);
    if (client) {
      // Most recently used last.
      this.scoped.delete(key);
    } else {
      const policy = new OutboundPolicy(spec);
      client = this.scopedClient(policy, this.circuit && { breaker: this.circuit, key: policy.siteId });
    }
    this.scoped.set(key, client);
    for (const oldest of this.scoped.keys()) {
      if (this.scoped.size <= MAX_SCOPED_CLIENTS) break;
      this.scoped.delete(oldest);
    }
    return client;
  }

  /**
   * A client for a policy used once (an upload URL a caller named): not kept, and its circuit is
   * `host`'s own (a dead host fails fast for everyone who names it, and no other host's requests).
   */
  forOneOff(spec: SitePolicySpec, host: string): SiteHttp {
    return this.scopedClient(new OutboundPolicy(spec), this.oneOffCircuit && { breaker: this.oneOffCircuit, key: host.toLowerCase() });
  }

  /** How many site clients are kept (at most MAX_SCOPED_CLIENTS). */
  get keptClients(): number {
    return this.scoped.size;
  }

  /** The calls of HttpClient under `policy`, with the circuit `circuit` names. */
  private scopedClient(policy: OutboundPolicy, circuit: Circuit | undefined): SiteHttp {
    return {
      request: (url, options) => this.send(url, options ?? {}, policy, circuit),
      text: async (url, options) => (await this.send(url, options ?? {}, policy, circuit)).text(),
      json: async <T>(url: string, options: RequestOptions = {}) =>
        (await this.send(url, { ...options, headers: { accept: 'application/json', ...options.headers } }, policy, circuit)).json<T>(),
    };
  }

  /** Send a request (no site policy: tests and tools only; adapters get `forSite`). */
  async request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    return this.send(url, options, undefined, undefined);
  }

  /** GET a document as text. */
  async text(url: string, options: RequestOptions = {}): Promise<string> {
    return (await this.request(url, options)).text();
  }

  /** GET a JSON document; a body that is not JSON is an UPSTREAM_MALFORMED error. */
  async json<T = unknown>(url: string, options: RequestOptions = {}): Promise<T> {
    return (await this.request(url, { ...options, headers: { accept: 'application/json', ...options.headers } })).json<T>();
  }

  /** Tell `observer` of every exchange from now on; returns the function that stops it. */
  observe(observer: UpstreamObserver): () => void {
    this.observers.add(observer);
    return () => void this.observers.delete(observer);
  }

  /** Hand `call` to the observers; an observer's failure never fails the request. */
  private report(call: UpstreamCall): void {
    for (const observer of this.observers) {
      try {
        observer(call);
      } catch {
        // metrics and logs are best effort
      }
    }
  }

  /** An exchange's observation, from its target URL and what became of it. */
  private called(target: URL | string, method: string, policy: OutboundPolicy | undefined, started: number | undefined, outcome: { status?: number; error?: unknown; phase?: UpstreamCall['phase'] }): void {
    if (this.observers.size === 0) return;
    let host = '';
    let path = '';
    try {
      const u = typeof target === 'string' ? new URL(target) : target;
      host = u.host;
      path = u.pathname;
    } catch {
      path = '(invalid URL)';
    }
    const errorCode = outcome.error === undefined ? undefined : outcome.error instanceof ConstellationError ? outcome.error.code : 'CONSTELLATION_E_INTERNAL';
    this.report({
      ...(policy ? { siteId: policy.siteId } : {}),
      method, host, path,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
      durationMs: started === undefined ? 0 : performance.now() - started,
      ...(errorCode ? { errorCode } : {}),
      phase: outcome.phase ?? 'request',
    });
  }

  /** Close the connection pools. */
  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.guardedAgent.close()]);
  }

  /** Send a request, retrying what may be retried; returns the response or throws a ConstellationError. */
  private async send(url: string, options: RequestOptions, policy: OutboundPolicy | undefined, circuit: Circuit | undefined): Promise<HttpResponse> {
    const method = options.method ?? 'GET';
    const retry = options.retry ?? method !== 'POST';
    const attempts = retry && !isStream(options.body) ? this.options.retries + 1 : 1;
    let first: URL;
    try {
      first = policy ? policy.check(url) : parseUrl(url);
    } catch (err) {
      // Refused before anything was sent (outbound policy, invalid URL): still an error of the site's.
      this.called(url, method, policy, undefined, { error: err });
      throw err;
    }
    const report = circuit?.breaker.enter(circuit.key);
    let lastError: UpstreamError | undefined;
    let outcome: CircuitOutcome = 'neutral';
    try {
      for (let attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0) {
          const wait = lastError?.retryAfterMs ?? backoff(this.options.retryBaseMs, attempt);
          if (wait > this.options.maxRetryDelayMs) break;
          await sleep(wait, undefined, { signal: options.signal }).catch(() => {
            throw translateNetworkError(options.signal?.reason ?? { name: 'AbortError' }, url, policy);
          });
        }
        try {
          const res = await this.once(first, method, options, policy, first.host, 0);
          outcome = 'success';
          return res;
        } catch (err) {
          outcome = err instanceof UpstreamError && err.siteFault ? 'failure' : err instanceof UpstreamError && err.status !== undefined ? 'success' : 'neutral';
          if (!(err instanceof UpstreamError) || !err.retryable) throw err;
          lastError = err;
        }
      }
      throw lastError!;
    } finally {
      report?.(outcome);
    }
  }

  private async once(
    target: URL,
    method: NonNullable<RequestOptions['method']>,
    options: RequestOptions,
    policy: OutboundPolicy | undefined,
    credentialHost: string | undefined,
    redirects: number,
  ): Promise<HttpResponse> {
    const started = performance.now();
    // Set once this exchange is reported, so a failure inside a redirect's own exchange is not reported twice.
    let reported = false;
    const called = (outcome: { status?: number; error?: unknown }) => {
      reported = true;
      this.called(target, method, policy, started, outcome);
    };
    try {
      return await this.exchange(target, method, options, policy, credentialHost, redirects, called);
    } catch (err) {
      if (!reported) this.called(target, method, policy, started, { error: err });
      throw err;
    }
  }

  /** One request and its answer (following redirects through `once`); `called` reports the exchange when its answer is known. */
  private async exchange(
    target: URL,
    method: NonNullable<RequestOptions['method']>,
    options: RequestOptions,
    policy: OutboundPolicy | undefined,
    credentialHost: string | undefined,
    redirects: number,
    called: (outcome: { status?: number; error?: unknown }) => void,
  ): Promise<HttpResponse> {
    const url = target.toString();
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...options.headers };
    // The credential goes to the host it was first meant for, and only to the site's own or
    // allowed hosts; a redirect that changes host drops it (and any credential header the
    // adapter set itself) for the rest of the chain.
    if (credentialHost === target.host) applyCredential(headers, options.credential);
    else for (const name of Object.keys(headers)) if (CREDENTIAL_HEADERS.includes(name.toLowerCase())) delete headers[name];
    if (options.conditional?.etag) headers['if-none-match'] = options.conditional.etag;
    if (options.conditional?.lastModified) headers['if-modified-since'] = options.conditional.lastModified;
    let dispatcher = this.agent;
    if (policy && !(await policy.privateAllowed())) {
      const literal = target.hostname.replace(/^\[|\]$/g, '');
      if (isIP(literal) && isPrivateAddress(literal)) throw policy.refusal(target.host, 'is a private address and the site is not');
      dispatcher = this.guardedAgent;
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(url, {
        method,
        headers,
        body: options.body as Dispatcher.DispatchOptions['body'],
        signal: options.signal,
        dispatcher,
      });
    } catch (err) {
      throw translateNetworkError(err, url, policy);
    }
    const responseHeaders = flattenHeaders(res.headers);
    const status = res.statusCode;
    const follow = (options.followRedirects ?? true) && (method === 'GET' || method === 'HEAD');
    if (follow && [301, 302, 303, 307, 308].includes(status) && responseHeaders.location && !options.accept?.includes(status)) {
      discard(res.body);
      called({ status });
      if (redirects >= MAX_REDIRECTS) throw new UpstreamError('UPSTREAM', `${where(url, policy)}: too many redirects`, { status, retryable: false });
      let next: URL;
      try {
        next = new URL(responseHeaders.location, url);
      } catch {
        throw new UpstreamError('UPSTREAM_MALFORMED', `${where(url, policy)}: redirect to an invalid URL`, { status, retryable: false });
      }
      if (policy) policy.check(next.toString());
      return this.once(next, method, options, policy, next.host === credentialHost ? credentialHost : undefined, redirects + 1);
    }
    const ok = (status >= 200 && status < 300) || status === 304 || options.accept?.includes(status);
    if (!ok) {
      const excerpt = await readExcerpt(res, this.limits.errorBodyBytes);
      const error = statusError(status, url, responseHeaders, excerpt, policy, this.limits.errorBodyBytes);
      called({ status, error });
      throw error;
    }
    called({ status });
    const started = performance.now();
    const bodyFailed = (error: unknown) => this.called(target, method, policy, started, { status, error, phase: 'body' });
    return wrapResponse(res, status, url, responseHeaders, options.meter, this.limits, policy, bodyFailed);
  }
}

/** Which circuit a scoped client's requests go through: a breaker and the key of theirs in it. */
interface Circuit {
  breaker: CircuitBreaker;
  key: string;
}

/** A ConstellationError raised for an upstream answer, with what retrying needs to know. */
export class UpstreamError extends ConstellationError {
  readonly status?: number;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /** The site failed (network error, timeout, 5xx): counts towards opening its circuit. */
  readonly siteFault: boolean;

  constructor(kind: ErrorKind, message: string, options: { status?: number; retryable: boolean; retryAfterMs?: number; cause?: unknown; siteFault?: boolean }) {
    super(kind, message, { cause: options.cause });
    this.status = options.status;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.siteFault = options.siteFault ?? false;
  }
}

/** How a request is named in errors: the site (when scoped) and the URL without query values. */
function where(url: string, policy: OutboundPolicy | undefined): string {
  return policy ? `site "${policy.siteId}" (${redact(url)})` : redact(url);
}

function applyCredential(headers: Record<string, string>, credential: SiteCredential | undefined): void {
  switch (credential?.kind) {
    case undefined:
    case 'anonymous':
      return;
    case 'bearer':
      headers.authorization = `Bearer ${credential.token}`;
      return;
    case 'basic':
      headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
      return;
    case 'header':
      headers[credential.name.toLowerCase()] = credential.value;
      return;
    case 'cookie':
      headers.cookie = `${credential.name}=${credential.value}`;
      return;
  }
}

function statusError(status: number, url: string, headers: Record<string, string>, excerpt: Excerpt, policy: OutboundPolicy | undefined, limit: number): UpstreamError {
  const w = `${where(url, policy)} answered ${status}${excerpt.text ? `: ${excerpt.text}` : ''}${excerpt.truncated ? ` (error body over ${limit} bytes, not read further)` : ''}`;
  // An error body too large to read whole is not asked for again: retrying would only fetch it again.
  const again = !excerpt.truncated;
  if (status === 429) {
    return new UpstreamError('UPSTREAM_RATE_LIMITED', `rate limited: ${w}`, { status, retryable: again, retryAfterMs: retryAfter(headers['retry-after']) });
  }
  if (status === 401 || status === 403) return new UpstreamError('UPSTREAM_AUTH', `not authorised: ${w}`, { status, retryable: false });
  if (status === 503) {
    return new UpstreamError('UPSTREAM_UNAVAILABLE', `unavailable: ${w}`, { status, retryable: again, retryAfterMs: retryAfter(headers['retry-after']), siteFault: true });
  }
  if (status >= 500) return new UpstreamError('UPSTREAM', `server error: ${w}`, { status, retryable: again, siteFault: true });
  return new UpstreamError('UPSTREAM', `request refused: ${w}`, { status, retryable: false });
}

/** Network error codes shown as a category, so error text never reflects what another host said. */
const NETWORK_CATEGORIES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_CLOSED: 'connection closed',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'host unreachable',
};

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);

/**
 * A network failure as a coded error. Timeouts of every kind are UPSTREAM_TIMEOUT: undici's
 * connect/headers/body timeouts, ETIMEDOUT, and an AbortSignal.timeout deadline (a DOMException
 * "TimeoutError" whose numeric code 23 used to be shown as "cannot reach …: 23").
 */
function translateNetworkError(err: unknown, url: string, policy?: OutboundPolicy): ConstellationError {
  if (err instanceof ConstellationError) return err;
  const e = err as { code?: string | number; name?: string; message?: string; cause?: { code?: string } };
  const code = typeof e?.code === 'string' ? e.code : e?.cause?.code;
  if (code === PRIVATE_ADDRESS_CODE && policy) {
    return policy.refusal(new URL(url).host, 'resolves to a private address and the site does not');
  }
  if (e?.name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code)) || err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    // Our own deadline (AbortSignal.timeout) is final; undici's per-attempt timeouts may be retried.
    return new UpstreamError('UPSTREAM_TIMEOUT', `${where(url, policy)} did not answer in time (${e?.name === 'TimeoutError' ? 'deadline passed' : code})`, { retryable: e?.name !== 'TimeoutError', cause: err, siteFault: true });
  }
  if (e?.name === 'AbortError' || code === 'UND_ERR_ABORTED') {
    return new UpstreamError('UPSTREAM_TIMEOUT', `request to ${where(url, policy)} was cancelled`, { retryable: false, cause: err });
  }
  const category = (code && NETWORK_CATEGORIES[code]) ?? 'network error';
  return new UpstreamError('UPSTREAM_UNAVAILABLE', `cannot reach ${where(url, policy)}: ${category}`, { retryable: true, cause: err, siteFault: true });
}

/** UPSTREAM_TOO_LARGE for an answer over `limit` (`key` names the federation.yaml setting). */
function tooLarge(url: string, policy: OutboundPolicy | undefined, limit: number, key: keyof ByteLimits): UpstreamError {
  return new UpstreamError('UPSTREAM_TOO_LARGE', `${where(url, policy)} sent an answer over the limit of ${limit} bytes (limits.${key}); not read further`, { retryable: false });
}

function wrapResponse(res: Dispatcher.ResponseData, status: number, url: string, headers: Record<string, string>, meter: ByteMeter | undefined, limits: ByteLimits, policy: OutboundPolicy | undefined, bodyFailed?: (err: unknown) => void): HttpResponse {
  let consumed = false;
  const take = (limit: number, key: keyof ByteLimits): AsyncIterable<Uint8Array> => {
    if (consumed) throw new Error('response body already consumed');
    consumed = true;
    return limited(res.body, url, meter, limit, key, policy, declaredLength(headers), bodyFailed);
  };
  // A document read whole is bounded by documentBytes; a result streamed through by resultBytes.
  const bytes = async () => {
    const parts: Buffer[] = [];
    for await (const chunk of take(limits.documentBytes, 'documentBytes')) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  };
  return {
    status,
    url,
    headers,
    notModified: status === 304,
    get body() {
      return take(limits.resultBytes, 'resultBytes');
    },
    text: async () => (await bytes()).toString('utf8'),
    json: async <T>() => {
      const text = (await bytes()).toString('utf8');
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new ConstellationError('UPSTREAM_MALFORMED', `${where(url, policy)} did not return JSON: ${(err as Error).message}`, { cause: err });
      }
    },
    bytes,
    dump: async () => {
      if (!consumed) {
        consumed = true;
        // A small rest is drained so the connection can be reused; a large one is cut.
        await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      }
    },
  };
}

/** A URL to request without a site policy; an invalid one is the upstream's fault (it handed it out). */
function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new UpstreamError('UPSTREAM_MALFORMED', `not a valid URL: ${redact(url)}`, { retryable: false });
  }
}

/** Stop reading a body and drop its connection (undici reports the abort as an error event: nobody waits for it). */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

function declaredLength(headers: Record<string, string>): number | undefined {
  const n = Number(headers['content-length']);
  return headers['content-length'] !== undefined && Number.isFinite(n) ? n : undefined;
}

/**
 * How much of a streamed answer is buffered between the site's socket and its reader: a few of
 * undici's 64 KiB pieces, so a reader that pipes the body is not paused after every piece.
 */
const BODY_BUFFER_BYTES = 256 * 1024;

/**
 * The body, counted into `meter`, failing with UPSTREAM_TOO_LARGE (and the connection dropped)
 * once over `limit`, its network failures translated. A Transform the site's body is piped into,
 * not a generator: a reader that pipes it on (the results pass-through) pays no promise per
 * piece; one that iterates it gets the same pieces and errors. A reader that stops early
 * (destroys it, or leaves its iteration) drops the site's connection.
 */
function limited(body: Dispatcher.ResponseData['body'], url: string, meter: ByteMeter | undefined, limit: number, key: keyof ByteLimits, policy: OutboundPolicy | undefined, declared: number | undefined, bodyFailed?: (err: unknown) => void): Readable {
  let seen = 0;
  const out = new Transform({
    readableHighWaterMark: BODY_BUFFER_BYTES,
    writableHighWaterMark: BODY_BUFFER_BYTES,
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.byteLength;
      if (seen > limit) {
        callback(tooLarge(url, policy, limit, key));
        return;
      }
      if (meter) meter.bytes += chunk.byteLength;
      callback(null, chunk);
    },
  });
  // Every failure of the body is reported once, whether or not a reader listens yet (an unheard
  // stream error would otherwise end the process); the reader still gets it from the stream.
  out.on('error', (err) => bodyFailed?.(err));
  // However the reader ends (done, failed, gone), the site's socket must not keep streaming.
  out.once('close', () => {
    if (!body.readableEnded) discard(body);
  });
  if (declared !== undefined && declared > limit) {
    out.destroy(tooLarge(url, policy, limit, key));
    return out;
  }
  // A body that fails or closes before its end fails the stream with the translated error.
  finished(body, { readable: true, writable: false }, (err) => {
    if (err && !out.destroyed) out.destroy(translateNetworkError(err, url, policy));
  });
  body.pipe(out);
  return out;
}

interface Excerpt {
  text: string;
  /** The body was longer than the excerpt limit and was cut. */
  truncated: boolean;
}

/** At most `limit` bytes of an error body, whitespace-collapsed to 200 characters; the rest is never read. */
async function readExcerpt(res: Dispatcher.ResponseData, limit: number): Promise<Excerpt> {
  const declared = declaredLength(flattenHeaders(res.headers));
  const parts: Buffer[] = [];
  let seen = 0;
  let truncated = declared !== undefined && declared > limit;
  try {
    if (!truncated) {
      for await (const chunk of res.body) {
        parts.push(Buffer.from(chunk));
        seen += chunk.byteLength;
        if (seen > limit) {
          truncated = true;
          break;
        }
      }
    }
  } catch {
    // An error body that breaks off is still an error answer; what arrived is enough.
  } finally {
    if (!res.body.readableEnded) discard(res.body);
  }
  const text = Buffer.concat(parts).subarray(0, limit).toString('utf8');
  return { text: text.replace(/\s+/g, ' ').trim().slice(0, 200), truncated };
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function retryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function backoff(baseMs: number, attempt: number): number {
  const exp = baseMs * 2 ** (attempt - 1);
  return exp / 2 + Math.random() * exp / 2;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function isStream(body: RequestOptions['body']): boolean {
  return body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
}

/** A URL safe to show: no user info, no query values (they may carry tokens). */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, '…');
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
