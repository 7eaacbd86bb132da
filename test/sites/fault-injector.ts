/**
 * Faults drawn per request on a SimSite (SimSite's own `setFault` applies one fault to every
 * request, which would stop a fleet of brokers dead rather than test it), and a ledger of every
 * request that creates work at the site: a TAP query sent with a RUNID (the broker's job id),
 * synchronous or an async job creation, with who sent it, whether a fault hit it and whether
 * the answer went out whole. The fleet harness counts duplicates from this ledger.
 *
 * Faults before the handler (503, 429 with Retry-After, hang, reset) leave the site untouched:
 * nothing ran. Faults after it (reset-after, stall-after, slow-body, truncate, malformed) hit an
 * answer to work that did run: the query was read, the async job exists.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { seededRandom } from '../support/random.js';
import type { SimSite } from './sim-site.js';

/** A fault drawn for one request. */
export type InjectedFault = '503' | '429' | 'hang' | 'reset' | 'reset-after' | 'stall-after' | 'slow-body' | 'truncate' | 'malformed';

/** Faults that act before the handler runs: the site did nothing for the request. */
export const BEFORE_HANDLER: ReadonlySet<InjectedFault> = new Set(['503', '429', 'hang', 'reset']);

/** Every fault kind, in a fixed order for reports. */
export const FAULT_KINDS: readonly InjectedFault[] = ['503', '429', 'hang', 'reset', 'reset-after', 'stall-after', 'slow-body', 'truncate', 'malformed'];

/** A count of 0 for every fault kind. */
export function noFaults(): Record<InjectedFault, number> {
  return { '503': 0, '429': 0, hang: 0, reset: 0, 'reset-after': 0, 'stall-after': 0, 'slow-body': 0, truncate: 0, malformed: 0 };
}

/** What a request is, for choosing its fault rates: creating work, following a job, harvesting, or anything else. */
export type RouteClass = 'submit' | 'job' | 'harvest' | 'other';

/** Probability of each fault for one request (the rest answer honestly); their sum must be at most 1. */
export type FaultRates = Partial<Record<InjectedFault, number>>;

/**
 * Requests a fault may be forced on by their order at the site: the n-th synchronous query, the
 * n-th async job creation, the first request about the n-th async job created, or (with
 * `request`) any request about it by its order.
 */
export type ForcedKind = 'sync' | 'async' | 'first-job-request' | 'job-request';

/** A fault forced on one request (while faults are enabled), whatever the draw says. */
export interface ForcedFault {
  kind: ForcedKind;
  /** 1 for the first such request after faults were enabled (for the job kinds: the n-th async job created). */
  nth: number;
  /** For 'job-request': which request about that job, 1 for the first (default 1). */
  request?: number;
  fault: InjectedFault;
}

export interface FaultInjectorOptions {
  /** The site's name in the ledger. */
  name: string;
  /** Seed of the per-request draws, so a run's faults reproduce for the same request order. */
  seed: number;
  /** Fault rates by route class. */
  rates: Partial<Record<RouteClass, FaultRates>>;
  /** Retry-After of a 429, in seconds (default 1). */
  retryAfterS?: number;
  /** A slow body is sent in this many pieces, one per `slowTickMs` (default 20 pieces, 100 ms). */
  slowPieces?: number;
  slowTickMs?: number;
  /** The process at the other end of a new connection (test/support/peer-process.ts), recorded with each attempt. */
  peerOf?: (socket: Socket) => number | undefined;
  /** Faults forced on given requests, so a short run meets each of them for certain. */
  forced?: readonly ForcedFault[];
}

/** One request that creates work at the site: a query with a RUNID, sent to /sync or /async. */
export interface SiteAttempt {
  site: string;
  runId: string;
  mode: 'sync' | 'async';
  /** When the handler was reached (ms since the epoch). */
  at: number;
  /** When the answer finished or the connection closed. */
  endedAt?: number;
  /** The sending process, when it could be told. */
  pid?: number;
  /** The fault applied to the answer, if any (faults before the handler never reach the ledger). */
  fault?: InjectedFault;
  status?: number;
  /** True when the honest answer was written whole (an async creation's 303, a sync query's result). */
  delivered: boolean;
  /** The site's id for an async job it created (from the 303's Location). */
  siteJobId?: string;
}

/** A request about an existing async job (its status, phase, result, or a cancel), by site job id and sender. */
export interface SiteJobRequest {
  site: string;
  siteJobId: string;
  at: number;
  pid?: number;
}

/** A request to cancel or delete an async job, by site job id. */
export interface SiteCancel {
  site: string;
  siteJobId: string;
  at: number;
}

/** The injector on one site: its ledger, counts of what it injected, and a switch. */
export interface FaultInjector {
  readonly name: string;
  /** Faults are drawn only while enabled (default on). */
  enabled: boolean;
  readonly attempts: SiteAttempt[];
  readonly cancels: SiteCancel[];
  /** Every request about an existing async job, with its sender. */
  readonly jobRequests: SiteJobRequest[];
  /** Faults injected so far, by route class and kind. */
  readonly injected: Record<RouteClass, Record<InjectedFault, number>>;
  /** Requests seen, by route class. */
  readonly requests: Record<RouteClass, number>;
  /** Requests held by a hang or stall now (released when their client goes away or the site closes). */
  held(): number;
}

interface Drawn {
  fault?: InjectedFault;
  route: RouteClass;
  attempt?: SiteAttempt;
  /** For an async job creation: its order among them (forced faults on the job's first request use it). */
  creation?: number;
}

const ROUTES: readonly RouteClass[] = ['submit', 'job', 'harvest', 'other'];

/** Which kind of request `method path` is on a TAP service mounted anywhere (path without the query string). */
export function routeClass(method: string, path: string): RouteClass {
  if (method === 'POST' && /\/(sync|async)$/.test(path)) return 'submit';
  if (/\/async\/[^/]+(\/.*)?$/.test(path)) return 'job';
  if (method === 'GET' && /\/(capabilities|availability|tables)(\/[^/]+)?$/.test(path)) return 'harvest';
  return 'other';
}

/** Add per-request faults and the attempt ledger to `site`; call before site.start(). */
export function injectFaults(site: SimSite, options: FaultInjectorOptions): FaultInjector {
  checkRates(options);
  const random = seededRandom(options.seed);
  const drawn = new WeakMap<FastifyRequest, Drawn>();
  const peers = new WeakMap<Socket, number | undefined>();
  const holding = new Set<() => void>();
  const injector: FaultInjector = {
    name: options.name,
    enabled: true,
    attempts: [],
    cancels: [],
    jobRequests: [],
    injected: { submit: noFaults(), job: noFaults(), harvest: noFaults(), other: noFaults() },
    requests: { submit: 0, job: 0, harvest: 0, other: 0 },
    held: () => holding.size,
  };
  const counts = { sync: 0, async: 0 };
  const createdOrder = new Map<string, number>();
  /** Requests seen about each async job, by its id. */
  const askedAbout = new Map<string, number>();
  /** The forced fault of this request and its order in its kind, counting it. */
  const forcedFor = (method: string, path: string): { fault?: InjectedFault; creation?: number } => {
    const kind = method === 'POST' && path.endsWith('/sync') ? 'sync' : method === 'POST' && path.endsWith('/async') ? 'async' : undefined;
    if (kind) {
      const nth = ++counts[kind];
      const fault = options.forced?.find((f) => f.kind === kind && f.nth === nth)?.fault;
      return { fault, ...(kind === 'async' ? { creation: nth } : {}) };
    }
    const jobId = /\/async\/([^/]+)/.exec(path)?.[1];
    if (jobId === undefined) return {};
    const request = (askedAbout.get(jobId) ?? 0) + 1;
    askedAbout.set(jobId, request);
    const creation = createdOrder.get(jobId) ?? 0;
    const fault = options.forced?.find((f) => f.nth === creation && (f.kind === 'job-request' ? (f.request ?? 1) === request : f.kind === 'first-job-request' && request === 1))?.fault;
    return { fault };
  };
  const pieces = options.slowPieces ?? 20;
  const tickMs = options.slowTickMs ?? 100;

  const draw = (route: RouteClass): InjectedFault | undefined => {
    const rates = options.rates[route] ?? {};
    const r = random();
    let sum = 0;
    for (const kind of FAULT_KINDS) {
      sum += rates[kind] ?? 0;
      if (r < sum) return kind;
    }
    return undefined;
  };

  /** Hold the request until its client goes away or the site closes (a hang or a stall). */
  const hold = (request: FastifyRequest): Promise<void> =>
    new Promise<void>((resolve) => {
      const release = () => {
        holding.delete(release);
        resolve();
      };
      holding.add(release);
      request.raw.socket.once('close', release);
    });

  site.app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0];
    const route = routeClass(request.method, path);
    injector.requests[route]++;
    const forced = injector.enabled ? forcedFor(request.method, path) : {};
    const fault = injector.enabled ? forced.fault ?? draw(route) : undefined;
    drawn.set(request, { route, fault, ...(forced.creation !== undefined ? { creation: forced.creation } : {}) });
    if ((route === 'submit' || route === 'job') && options.peerOf && !peers.has(request.raw.socket)) {
      // Asked now, while the sender's end of the connection certainly exists.
      peers.set(request.raw.socket, options.peerOf(request.raw.socket));
    }
    if (fault === undefined || !BEFORE_HANDLER.has(fault)) return;
    injector.injected[route][fault]++;
    if (fault === '503') return reply.code(503).type('text/plain').send('simulated overload');
    if (fault === '429') return reply.code(429).header('retry-after', String(options.retryAfterS ?? 1)).type('text/plain').send('slow down');
    reply.hijack();
    if (fault === 'reset') {
      request.raw.socket.destroy();
      return;
    }
    // hang: accepted, never answered; the client's deadline ends it.
    await hold(request);
    request.raw.socket.destroy();
  });

  // After the body is parsed: a query with a RUNID is a broker job's attempt.
  site.app.addHook('preHandler', async (request, reply) => {
    const d = drawn.get(request);
    if (d?.route === 'submit') {
      const params = formParams(request.body);
      const runId = params?.get('RUNID');
      if (runId !== undefined) {
        const mode = request.url.split('?')[0].endsWith('/sync') ? 'sync' : 'async';
        const attempt: SiteAttempt = { site: options.name, runId, mode, at: Date.now(), delivered: false, pid: peers.get(request.raw.socket) };
        d.attempt = attempt;
        injector.attempts.push(attempt);
        const fault = d.fault;
        reply.raw.once('finish', () => {
          attempt.endedAt ??= Date.now();
          attempt.status = reply.statusCode;
          attempt.delivered = (fault === undefined || fault === 'slow-body') && reply.statusCode < 400;
        });
        reply.raw.once('close', () => {
          attempt.endedAt ??= Date.now();
        });
      }
    }
    const jobId = d?.route === 'job' ? /\/async\/([^/?]+)/.exec(request.url)?.[1] : undefined;
    if (jobId) {
      injector.jobRequests.push({ site: options.name, siteJobId: jobId, at: Date.now(), pid: peers.get(request.raw.socket) });
      if (isCancel(request)) injector.cancels.push({ site: options.name, siteJobId: jobId, at: Date.now() });
    }
  });

  site.app.addHook('onSend', async (request, reply, payload) => {
    const d = drawn.get(request);
    if (d?.attempt?.mode === 'async') {
      const location = reply.getHeader('location');
      const id = typeof location === 'string' ? /\/async\/([^/?]+)$/.exec(location)?.[1] : undefined;
      if (id) {
        d.attempt.siteJobId = id;
        if (d.creation !== undefined) createdOrder.set(id, d.creation);
      }
    }
    const fault = d?.fault;
    if (!d || fault === undefined || BEFORE_HANDLER.has(fault)) return payload;
    const applied = await applyAfter(fault, request, reply, payload);
    if (applied.applied) {
      injector.injected[d.route][fault]++;
      if (d.attempt) d.attempt.fault = fault;
    }
    return applied.payload;
  });

  site.app.addHook('onClose', async () => {
    for (const release of [...holding]) release();
  });

  /** The answer with `fault` applied after the handler ran; `applied` is false when it does not apply to this answer. */
  async function applyAfter(fault: InjectedFault, request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<{ applied: boolean; payload: unknown }> {
    if (fault === 'reset-after') {
      request.raw.socket.destroy();
      return { applied: true, payload };
    }
    if (fault === 'stall-after') {
      // The work is done; the answer never starts. The client's deadline ends it.
      await hold(request);
      request.raw.socket.destroy();
      return { applied: true, payload };
    }
    const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
    // An empty answer (a 303) has no body to distort.
    if (text === undefined || text.length === 0) return { applied: false, payload };
    if (fault === 'truncate') {
      reply.removeHeader('content-length');
      return { applied: true, payload: text.slice(0, Math.floor(text.length / 2)) };
    }
    if (fault === 'malformed') {
      if (!/xml/.test(String(reply.getHeader('content-type')))) return { applied: false, payload };
      reply.removeHeader('content-length');
      return { applied: true, payload: text.replace(/<\/[A-Za-z:]+>\s*$/, '').replace(/<([A-Za-z])/, '<$1 broken="') + '<unclosed' };
    }
    // slow-body: the whole answer, in pieces.
    reply.removeHeader('content-length');
    const size = Math.max(1, Math.ceil(text.length / pieces));
    return {
      applied: true,
      payload: Readable.from((async function* () {
        for (let i = 0; i < text.length; i += size) {
          await sleep(tickMs);
          yield text.slice(i, i + size);
        }
      })()),
    };
  }

  return injector;
}

/** True for a UWS request that aborts or deletes a job. */
function isCancel(request: FastifyRequest): boolean {
  if (request.method === 'DELETE') return true;
  if (request.method !== 'POST') return false;
  const params = formParams(request.body);
  return params?.get('ACTION')?.toUpperCase() === 'DELETE' || params?.get('PHASE')?.toUpperCase() === 'ABORT';
}

/** A form-encoded body's parameters (names upper-cased), or the QUERY-less multipart's text fields; undefined for anything else. */
function formParams(body: unknown): Map<string, string> | undefined {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('latin1') : undefined;
  if (text === undefined) return undefined;
  const out = new Map<string, string>();
  if (/^--/.test(text)) {
    for (const m of text.matchAll(/name="([^"]+)"\r\n(?:[^\r\n]+\r\n)*\r\n([\s\S]*?)\r\n--/g)) out.set(m[1].toUpperCase(), m[2]);
    return out;
  }
  for (const [k, v] of new URLSearchParams(text)) out.set(k.toUpperCase(), v);
  return out;
}

function isFaultKind(kind: string): kind is InjectedFault {
  return FAULT_KINDS.some((k) => k === kind);
}

function checkRates(options: FaultInjectorOptions): void {
  for (const route of ROUTES) {
    const rates = options.rates[route] ?? {};
    let sum = 0;
    for (const [kind, p] of Object.entries(rates)) {
      if (!isFaultKind(kind)) throw new Error(`fault injector ${options.name}: rates.${route}.${kind} is not a fault kind (${FAULT_KINDS.join(', ')})`);
      if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`fault injector ${options.name}: rates.${route}.${kind} must be a probability from 0 to 1, got ${String(p)}`);
      sum += p;
    }
    if (sum > 1) throw new Error(`fault injector ${options.name}: the fault rates of ${route} requests add up to ${sum}, more than 1`);
  }
}
