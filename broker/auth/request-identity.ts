/**
 * Who each request comes from, decided before anything else reads it: a verified bearer token,
 * else the browser's session cookie, else anonymous. A token that does not verify is refused
 * with 401 UNAUTHENTICATED (never treated as anonymous: a client that meant to be someone should
 * learn that it is not).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { ANONYMOUS_IDENTITY, type Identity } from './identity.js';
import type { IdentityServices } from './identity-services.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent this request (anonymous when no credential came with it). */
    identity: Identity;
  }
}

/** The browser session cookie's name. */
export const SESSION_COOKIE = 'constellation_session';

/** Paths that never look at credentials here (probes must answer whatever a client sends; /metrics checks its scrape token itself, broker/metrics/access.ts). */
const UNCHECKED = new Set(['/healthz', '/readyz', '/metrics']);

/** Resolve `request.identity` on every request; `identity()` is undefined when the federation has no identity provider. */
export function identifyRequests(app: FastifyInstance, identity: () => IdentityServices | undefined): void {
  // Fastify wants null for a per-request object decorator; the hook below sets it first thing.
  app.decorateRequest('identity', null as never);
  app.addHook('onRequest', async (request, reply) => {
    request.identity = ANONYMOUS_IDENTITY;
    if (UNCHECKED.has(request.url)) return;
    try {
      request.identity = await identify(request, identity());
    } catch (err) {
      if (!isConstellationError(err)) throw err;
      return refuse(reply, err);
    }
  });
}

/** The identity a request's own headers prove (used for HTTP requests and the WebSocket upgrade alike). */
export async function identify(request: Pick<FastifyRequest, 'headers'>, services: IdentityServices | undefined): Promise<Identity> {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) return bearerIdentity(authorization, services);
  const cookie = services?.sessions ? cookieValue(request.headers.cookie, SESSION_COOKIE) : undefined;
  if (cookie === undefined || !services?.sessions) return ANONYMOUS_IDENTITY;
  const token = await services.sessions.accessTokenFor(cookie);
  // A session that ended (logged out, expired, from another key) leaves the browser anonymous, as after a logout.
  return token ? (await services.verifier()).verify(token.reveal()) : ANONYMOUS_IDENTITY;
}

/** The user an `Authorization` header value proves; UNAUTHENTICATED when it proves no one. */
export async function bearerIdentity(authorization: string, services: IdentityServices | undefined): Promise<Identity> {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization);
  if (!match) throw new ConstellationError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"; no other scheme is accepted');
  if (!services) throw new ConstellationError('UNAUTHENTICATED', 'this federation has no identity provider (identity in federation.yaml), so it accepts no bearer tokens; send the request without one');
  return (await services.verifier()).verify(match[1]);
}

/** 401 with the RFC 6750 challenge, or the error's own status (503 when the provider is unreachable). */
export function refuse(reply: FastifyReply, err: ConstellationError): FastifyReply {
  if (err.kind === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer error="invalid_token"');
  return reply.code(err.statusCode).send(err.toJSON());
}

/** One cookie's value from a Cookie header (undefined when absent). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a malformed escape is no cookie of ours: the caller is as without one
      }
    }
  }
  return undefined;
}
