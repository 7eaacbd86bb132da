/**
 * The one place undici is used: a shared Agent with explicit connect, headers and body
 * timeouts; retries with backoff on network errors, 5xx and 429 (honouring Retry-After);
 * conditional requests; credentials applied per request; upstream failures translated once
 * into ConstellationErrors with stable codes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, errors as undiciErrors, request as undiciRequest, type Dispatcher } from 'undici';
import type { ByteMeter, SiteCredential } from '../registry/model/adapter.js';
import { ConstellationError, type ErrorKind } from '../registry/model/errors.js';

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
}

export type { ByteMeter };

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

const DEFAULTS: Required<HttpClientOptions> = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 60_000,
  retries: 3,
  retryBaseMs: 200,
  maxRetryDelayMs: 30_000,
  userAgent: 'constellation-broker/0.1 (+https://github.com/constellation)',
};

const MAX_REDIRECTS = 5;

/** An HTTP client over one undici Agent; create one per process (or per test) and close it. */
export class HttpClient {
  private readonly options: Required<HttpClientOptions>;
  private readonly agent: Agent;

  constructor(options: HttpClientOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.agent = new Agent({
      connect: { timeout: this.options.connectTimeoutMs },
      headersTimeout: this.options.headersTimeoutMs,
      bodyTimeout: this.options.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
    });
  }

  /** Send a request, retrying what may be retried; returns the response or throws a ConstellationError. */
  async request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const method = options.method ?? 'GET';
    const retry = options.retry ?? method !== 'POST';
    const attempts = retry && !isStream(options.body) ? this.options.retries + 1 : 1;
    let lastError: UpstreamError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const wait = lastError?.retryAfterMs ?? backoff(this.options.retryBaseMs, attempt);
        if (wait > this.options.maxRetryDelayMs) break;
        await sleep(wait, undefined, { signal: options.signal }).catch(() => {
          throw new ConstellationError('UPSTREAM_TIMEOUT', `request to ${redact(url)} was cancelled`);
        });
      }
      try {
        return await this.once(url, method, options);
      } catch (err) {
        if (!(err instanceof UpstreamError) || !err.retryable) throw err;
        lastError = err;
      }
    }
    throw lastError!;
  }

  /** GET a document as text. */
  async text(url: string, options: RequestOptions = {}): Promise<string> {
    return (await this.request(url, options)).text();
  }

  /** GET a JSON document; a body that is not JSON is an UPSTREAM_MALFORMED error. */
  async json<T = unknown>(url: string, options: RequestOptions = {}): Promise<T> {
    return (await this.request(url, { ...options, headers: { accept: 'application/json', ...options.headers } })).json<T>();
  }

  /** Close the connection pool. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private async once(url: string, method: NonNullable<RequestOptions['method']>, options: RequestOptions, redirects = 0): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...options.headers };
    applyCredential(headers, options.credential);
    if (options.conditional?.etag) headers['if-none-match'] = options.conditional.etag;
    if (options.conditional?.lastModified) headers['if-modified-since'] = options.conditional.lastModified;
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(url, {
        method,
        headers,
        body: options.body as Dispatcher.DispatchOptions['body'],
        signal: options.signal,
        dispatcher: this.agent,
      });
    } catch (err) {
      throw translateNetworkError(err, url);
    }
    const responseHeaders = flattenHeaders(res.headers);
    const status = res.statusCode;
    const follow = (options.followRedirects ?? true) && (method === 'GET' || method === 'HEAD');
    if (follow && [301, 302, 303, 307, 308].includes(status) && responseHeaders.location && !options.accept?.includes(status)) {
      await res.body.dump();
      if (redirects >= MAX_REDIRECTS) throw new UpstreamError('UPSTREAM', `too many redirects from ${redact(url)}`, { status, retryable: false });
      return this.once(new URL(responseHeaders.location, url).toString(), method, options, redirects + 1);
    }
    const ok = (status >= 200 && status < 300) || status === 304 || options.accept?.includes(status);
    if (!ok) {
      const excerpt = await readExcerpt(res.body);
      throw statusError(status, url, responseHeaders, excerpt);
    }
    return wrapResponse(res, status, url, responseHeaders, options.meter);
  }
}

/** A ConstellationError raised for an upstream answer, with what retrying needs to know. */
export class UpstreamError extends ConstellationError {
  readonly status?: number;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;

  constructor(kind: ErrorKind, message: string, options: { status?: number; retryable: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(kind, message, { cause: options.cause });
    this.status = options.status;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
  }
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

function statusError(status: number, url: string, headers: Record<string, string>, excerpt: string): UpstreamError {
  const where = `${redact(url)} answered ${status}${excerpt ? `: ${excerpt}` : ''}`;
  if (status === 429) {
    return new UpstreamError('UPSTREAM_RATE_LIMITED', `rate limited: ${where}`, { status, retryable: true, retryAfterMs: retryAfter(headers['retry-after']) });
  }
  if (status === 401 || status === 403) return new UpstreamError('UPSTREAM_AUTH', `not authorised: ${where}`, { status, retryable: false });
  if (status === 503) {
    return new UpstreamError('UPSTREAM_UNAVAILABLE', `unavailable: ${where}`, { status, retryable: true, retryAfterMs: retryAfter(headers['retry-after']) });
  }
  if (status >= 500) return new UpstreamError('UPSTREAM', `server error: ${where}`, { status, retryable: true });
  return new UpstreamError('UPSTREAM', `request refused: ${where}`, { status, retryable: false });
}

function translateNetworkError(err: unknown, url: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED') {
    return new UpstreamError('UPSTREAM_TIMEOUT', `request to ${redact(url)} was cancelled`, { retryable: false, cause: err });
  }
  if (err instanceof undiciErrors.ConnectTimeoutError || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamError('UPSTREAM_TIMEOUT', `${redact(url)} did not answer in time (${e.code})`, { retryable: true, cause: err });
  }
  return new UpstreamError('UPSTREAM_UNAVAILABLE', `cannot reach ${redact(url)}: ${e?.code ?? e?.message ?? 'network error'}`, { retryable: true, cause: err });
}

function wrapResponse(res: Dispatcher.ResponseData, status: number, url: string, headers: Record<string, string>, meter?: ByteMeter): HttpResponse {
  let consumed = false;
  const take = (): AsyncIterable<Uint8Array> => {
    if (consumed) throw new Error('response body already consumed');
    consumed = true;
    return metered(res.body, url, meter);
  };
  const bytes = async () => {
    const parts: Buffer[] = [];
    for await (const chunk of take()) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  };
  return {
    status,
    url,
    headers,
    notModified: status === 304,
    get body() {
      return take();
    },
    text: async () => (await bytes()).toString('utf8'),
    json: async <T>() => {
      const text = (await bytes()).toString('utf8');
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new ConstellationError('UPSTREAM_MALFORMED', `${redact(url)} did not return JSON: ${(err as Error).message}`, { cause: err });
      }
    },
    bytes,
    dump: async () => {
      if (!consumed) {
        consumed = true;
        await res.body.dump();
      }
    },
  };
}

async function* metered(body: AsyncIterable<Uint8Array>, url: string, meter?: ByteMeter): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of body) {
      if (meter) meter.bytes += chunk.byteLength;
      yield chunk;
    }
  } catch (err) {
    throw translateNetworkError(err, url);
  }
}

async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  try {
    const text = await body.text();
    return text.replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return '';
  }
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
