/**
 * The access log: one compact line per answered request (method, URL with its secret
 * parameters blanked, status, milliseconds; the request id comes with every line), instead of
 * fastify's two full lines. GraphQL reads, the bulk of a busy broker's traffic, are not logged
 * unless sampled (issue 13 measured 400 MB of log per 15 s of load with every request logged);
 * mutations, subscriptions and every other route are. Errors are logged where they happen.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { loggableUrl } from './logging.js';

/** What the access log writes. */
export interface AccessLogOptions {
  /** false: no access lines at all. */
  enabled: boolean;
  /** The share of GraphQL reads logged, 0 (none) to 1 (all). */
  graphqlReadSample: number;
  /** Decides a sample (tests pass a fixed sequence); Math.random by default. */
  random?: () => number;
}

/** Log one line per answered request on `app`, as `options` say. */
export function logRequests(app: FastifyInstance, options: AccessLogOptions): void {
  if (!options.enabled) return;
  const random = options.random ?? Math.random;
  app.addHook('onResponse', async (request, reply) => {
    if (isGraphqlRead(request) && !(options.graphqlReadSample > 0 && random() < options.graphqlReadSample)) return;
    request.log.info({ method: request.method, url: loggableUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed');
  });
}

/** A GraphQL query (GET, or a POST whose document holds no mutation or subscription). */
function isGraphqlRead(request: FastifyRequest): boolean {
  const path = request.url.split('?', 1)[0];
  if (path !== '/graphql') return false;
  if (request.method === 'GET') return true;
  if (request.method !== 'POST') return false;
  const body: unknown = request.body;
  const query = body !== null && typeof body === 'object' && 'query' in body ? body.query : undefined;
  if (typeof query !== 'string') return false;
  // Comments and strings removed, so a word inside them does not count; a field named "mutation" would (it is then logged: harmless).
  const code = query.replace(/#[^\n\r]*/g, ' ').replace(/"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"/g, '""');
  return !/\b(mutation|subscription)\b/.test(code);
}
