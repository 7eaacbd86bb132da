/**
 * Whole-response cache for read-only GraphQL queries, keyed by the registry version the
 * process knows, the query text and its variables. Registry data changes only when a site
 * publishes or is harvested, and every such change bumps the version, so a cached answer is
 * a consistent answer of one version; a new version simply stops matching old entries.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { OperationAnalysis } from './cost.js';
import type { Identity } from '../auth/identity.js';
import { visibilityOf } from './context.js';

interface Entry {
  body: string;
  bytes: number;
}

/** A bounded LRU of serialised GraphQL responses. */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  /**
   * The key of a request at a registry version, or undefined when it must not be cached.
   * Cacheability is decided from the parsed operation that would run (the guard's analysis),
   * never from the text: only a query, and only when no field it reads changes without a new
   * registry version (jobs, harvest records; see cost.ts VOLATILE_FIELDS).
   */
  key(version: number, body: unknown, operation: OperationAnalysis | undefined, viewer = ''): string | undefined {
    if (!operation || operation.operation !== 'query' || operation.volatile) return undefined;
    if (typeof body !== 'object' || body === null) return undefined;
    const { query, variables, operationName } = body as { query?: unknown; variables?: unknown; operationName?: unknown };
    if (typeof query !== 'string') return undefined;
    return createHash('sha256').update(`${version}\u0000${viewer}\u0000${operationName ?? ''}\u0000${query}\u0000${JSON.stringify(variables ?? null)}`).digest('base64url');
  }

  get(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert to mark as most recently used.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.body;
  }

  set(key: string, body: string): void {
    const bytes = body.length * 2;
    if (bytes > this.maxBytes / 4) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { body, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    responseCacheKey?: string;
  }
}

/** What distinguishes one caller's discovery answers from another's: the replicas they may see. */
function viewerKey(identity: Identity): string {
  const visibility = visibilityOf(identity);
  return visibility === 'all' ? '*' : [...visibility].sort().join('\u0001');
}

/**
 * Serve repeated read-only GraphQL queries from `cache` at the registry version `version()`.
 * Runs after the guard (preValidation), whose analysis of the request says what it reads.
 */
export function cacheGraphQLResponses(app: FastifyInstance, cache: ResponseCache, version: () => number): void {
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.url !== '/graphql') return;
    // Callers who may see different replicas, or who call from different sites (the fast lane), never share an answer.
    const key = cache.key(version(), request.body, request.graphqlOperation, `${viewerKey(request.identity)}\u0002${request.callerSite ?? ''}`);
    if (!key) return;
    const hit = cache.get(key);
    if (hit !== undefined) return reply.header('content-type', 'application/json; charset=utf-8').header('x-constellation-cache', 'hit').send(hit);
    request.responseCacheKey = key;
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.responseCacheKey && reply.statusCode === 200 && typeof payload === 'string' && payload.startsWith('{"data"') && !payload.includes('"errors":[')) {
      cache.set(request.responseCacheKey, payload);
    }
    return payload;
  });
}
