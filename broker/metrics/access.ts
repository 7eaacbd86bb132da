/**
 * Who may read /metrics. Per-site figures (harvest failures, upstream errors, job counts by site)
 * tell an outsider how the federation's members are doing, so by default only the broker's own
 * host may scrape; an operator opens it further with a scrape token or to everyone:
 *
 * - a request from a loopback address that no proxy forwarded (no Forwarded / X-Forwarded-For /
 *   X-Real-IP header: behind a proxy on the same host every client would otherwise look local);
 * - `Authorization: Bearer <CONSTELLATION_METRICS_TOKEN>` from anywhere (Prometheus'
 *   `authorization: { credentials_file: … }`);
 * - an admin's bearer token or session, when federation.yaml names an identity provider;
 * - everyone, when `CONSTELLATION_METRICS_PUBLIC=true`.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { isAdmin } from '../auth/identity.js';
import type { IdentityServices } from '../auth/identity-services.js';
import { identify } from '../auth/request-identity.js';

/** The variable holding the scrape token. */
export const METRICS_TOKEN_ENV = 'CONSTELLATION_METRICS_TOKEN';
/** The variable that opens /metrics to everyone. */
export const METRICS_PUBLIC_ENV = 'CONSTELLATION_METRICS_PUBLIC';

/** Shortest scrape token accepted: a guessable token would open per-site figures to anyone. */
const MIN_TOKEN_LENGTH = 16;

/** Who may scrape, read once at start. */
export interface MetricsAccess {
  /** SHA-256 of the scrape token, compared in constant time; undefined: no token opens /metrics. */
  tokenHash?: Buffer;
  public: boolean;
}

/** The access settings in `env`; INVALID_CONFIG for a token too short or odd, or a PUBLIC value other than true/false. */
export function metricsAccessFrom(env: NodeJS.ProcessEnv): MetricsAccess {
  const token = env[METRICS_TOKEN_ENV];
  const open = env[METRICS_PUBLIC_ENV];
  if (open !== undefined && open !== '' && open !== 'true' && open !== 'false') {
    throw new ConstellationError('INVALID_CONFIG', `${METRICS_PUBLIC_ENV} must be "true" or "false"`);
  }
  if (token !== undefined && token !== '' && (token.length < MIN_TOKEN_LENGTH || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token))) {
    throw new ConstellationError('INVALID_CONFIG', `${METRICS_TOKEN_ENV} must be at least ${MIN_TOKEN_LENGTH} characters of a bearer token (letters, digits, -._~+/ and trailing =)`);
  }
  return { ...(token ? { tokenHash: digest(token) } : {}), public: open === 'true' };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** True for a request from this host that no proxy forwarded. */
export function isLocalRequest(request: Pick<FastifyRequest, 'socket' | 'headers'>): boolean {
  const address = request.socket.remoteAddress ?? '';
  const loopback = address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
  const forwarded = request.headers.forwarded !== undefined || request.headers['x-forwarded-for'] !== undefined || request.headers['x-real-ip'] !== undefined;
  return loopback && !forwarded;
}

/**
 * Resolves when `request` may read the metrics; UNAUTHENTICATED (no or an unknown credential)
 * or FORBIDDEN (a user who is not an admin) otherwise. The scrape token is checked here, not by
 * the identity hook, which leaves /metrics alone.
 */
export async function checkScrape(request: FastifyRequest, access: MetricsAccess, identity: IdentityServices | undefined): Promise<void> {
  if (access.public || isLocalRequest(request)) return;
  const authorization = request.headers.authorization;
  const bearer = authorization === undefined ? undefined : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization)?.[1];
  if (bearer !== undefined && access.tokenHash && timingSafeEqual(digest(bearer), access.tokenHash)) return;
  const how = `scrape from the broker's host${access.tokenHash ? `, with the scrape token (${METRICS_TOKEN_ENV}) as a bearer token` : ''}${identity ? ', or with an admin\'s token' : ''}`;
  if (authorization === undefined && !request.headers.cookie) {
    throw new ConstellationError('UNAUTHENTICATED', `/metrics is not open to anonymous callers: ${how}`);
  }
  // Not the scrape token: an identity provider's token or session may still be an admin's.
  let caller;
  try {
    caller = await identify(request, identity);
  } catch (err) {
    // An identity provider that cannot be reached says so (503); any other refusal is the credential's.
    if (isConstellationError(err) && err.kind !== 'UNAUTHENTICATED') throw err;
    throw new ConstellationError('UNAUTHENTICATED', `/metrics: the credential sent was not accepted; ${how}`, { cause: err });
  }
  if (isAdmin(caller)) return;
  if (caller.kind === 'anonymous') throw new ConstellationError('UNAUTHENTICATED', `/metrics is not open to anonymous callers: ${how}`);
  throw new ConstellationError('FORBIDDEN', `/metrics is for the federation's operators: ${how}`);
}
