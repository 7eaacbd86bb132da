/**
 * Browser login against the federation's OpenID provider: /login sends the browser there
 * (authorization code, PKCE S256, state, nonce), /callback redeems the code and starts a
 * server-side session, /logout ends it. The login in progress is kept in a short-lived sealed
 * cookie (nothing stored server side for a login never finished); the session cookie carries
 * only the signed session id.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';
import type { OidcProvider } from '../auth/provider.js';
import { SESSION_COOKIE, cookieValue } from '../auth/request-identity.js';
import { SECRET_KEY_ENV, type SecretKeys } from '../auth/secret-keys.js';
import type { SessionStore } from '../auth/sessions.js';

/** The cookie holding a login in progress (sealed: PKCE verifier, state, nonce, where to go next). */
export const LOGIN_COOKIE = 'constellation_login';
/** How long a login may take between /login and /callback. */
const LOGIN_TTL_MS = 600_000;
/** Longest `next` path accepted. */
const MAX_NEXT = 2048;
/** Binds the sealed login cookie to its use. */
const LOGIN_CONTEXT = 'login-state';

/** What the login routes need; undefined parts answer 503 saying what to configure. */
export interface LoginServices {
  provider: OidcProvider;
  /** Absent when CONSTELLATION_SECRET_KEY is unset. */
  sessions?: SessionStore;
  keys?: SecretKeys;
}

export interface LoginRoutesOptions {
  /** The login services once the broker has started; undefined when federation.yaml names no identity provider. */
  login: () => LoginServices | undefined;
}

interface LoginState {
  verifier: string;
  state: string;
  nonce: string;
  next: string;
  expiresAt: number;
}

/** /login, /callback and /logout (GET and POST). */
export async function loginRoutes(app: FastifyInstance, options: LoginRoutesOptions): Promise<void> {
  app.get<{ Querystring: { next?: unknown } }>('/login', async (request, reply) => {
    const { provider, keys } = ready(options.login());
    const next = localPath(request.query.next);
    const login: LoginState = {
      verifier: random(),
      state: random(),
      nonce: random(),
      next,
      expiresAt: Date.now() + LOGIN_TTL_MS,
    };
    const url = await provider.authorizationUrl({
      redirectUri: callbackUri(request),
      state: login.state,
      nonce: login.nonce,
      codeChallenge: createHash('sha256').update(login.verifier).digest('base64url'),
    });
    setCookie(reply, request, LOGIN_COOKIE, keys.seal('session-cookie', JSON.stringify(login), LOGIN_CONTEXT), { path: '/callback', maxAgeS: LOGIN_TTL_MS / 1000 });
    return reply.header('cache-control', 'no-store').redirect(url.href, 302);
  });

  // The callback's URL carries the authorization code: fastify's per-request lines (which log
  // the URL) are kept off for this route; warnings and errors still appear, without the URL.
  app.get<{ Querystring: { state?: unknown } }>('/callback', { logLevel: 'warn' }, async (request, reply) => {
    const { provider, keys, sessions } = ready(options.login());
    const login = openLogin(keys, cookieValue(request.headers.cookie, LOGIN_COOKIE));
    // The login cookie is spent whatever happens next: a failed callback starts again at /login.
    clearCookie(reply, request, LOGIN_COOKIE, '/callback');
    if (request.query.state !== login.state) {
      throw new ConstellationError('UNAUTHENTICATED', 'login failed: the state returned by the identity provider does not match this browser\'s login; start again at /login');
    }
    const callbackUrl = new URL(callbackUri(request));
    callbackUrl.search = new URL(request.url, 'http://localhost').search;
    const tokens = await provider.exchangeCode({ callbackUrl, codeVerifier: login.verifier, state: login.state, nonce: login.nonce });
    if (!tokens.claims) throw new ConstellationError('UNAUTHENTICATED', 'login failed: the identity provider returned no ID token (is the openid scope in identity.scopes?)');
    // A browser that logs in again leaves no orphaned session behind.
    const previous = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (previous) await sessions.end(previous);
    const { cookie, maxAgeS } = await sessions.create(tokens, tokens.claims.subject);
    setCookie(reply, request, SESSION_COOKIE, cookie, { path: '/', maxAgeS });
    app.log.info({ subject: tokens.claims.subject }, 'browser login');
    return reply.header('cache-control', 'no-store').redirect(login.next, 303);
  });

  const logout = async (request: FastifyRequest, reply: FastifyReply) => {
    const services = options.login();
    const cookie = cookieValue(request.headers.cookie, SESSION_COOKIE);
    const ended = cookie && services?.sessions ? await services.sessions.end(cookie) : undefined;
    clearCookie(reply, request, SESSION_COOKIE, '/');
    reply.header('cache-control', 'no-store');
    // The provider's own session ends too when it offers RP-initiated logout; else back home.
    const endSession = services
      ? await services.provider.endSessionUrl(ended?.idToken ? { idTokenHint: ended.idToken } : {}).catch((err: unknown) => {
        // The local session is over either way; the provider's own logout is a courtesy.
        request.log.warn({ err }, 'the identity provider\'s end-session address could not be read; logged out here only');
        return undefined;
      })
      : undefined;
    return reply.redirect(endSession?.href ?? '/', 303);
  };
  app.get('/logout', logout);
  app.post('/logout', logout);
}

/** The services, or 503 IDENTITY_UNAVAILABLE saying what is missing. */
function ready(login: LoginServices | undefined): Required<LoginServices> {
  if (!login) throw new ConstellationError('IDENTITY_UNAVAILABLE', 'this federation has no identity provider (identity in federation.yaml), so there is no login');
  if (!login.keys || !login.sessions) {
    throw new ConstellationError('IDENTITY_UNAVAILABLE', `browser login needs ${SECRET_KEY_ENV} (it seals sessions and signs their cookies): set it to a key made with openssl rand -base64 32`);
  }
  return { provider: login.provider, keys: login.keys, sessions: login.sessions };
}

/** `next` when it is a path on this broker, else INVALID_ARGUMENT (never an open redirect). */
export function localPath(next: unknown): string {
  if (next === undefined || next === '') return '/';
  if (
    typeof next !== 'string' ||
    next.length > MAX_NEXT ||
    !next.startsWith('/') ||
    next.startsWith('//') ||
    next.includes('\\') ||
    /[\u0000-\u001f\u007f]/.test(next) ||
    new URL(next, 'http://local.invalid').origin !== 'http://local.invalid'
  ) {
    throw new ConstellationError('INVALID_ARGUMENT', 'next: must be a path on this broker starting with a single "/" (e.g. /graphiql)');
  }
  return next;
}

function openLogin(keys: SecretKeys, sealed: string | undefined): LoginState {
  const plain = sealed ? keys.open('session-cookie', sealed, LOGIN_CONTEXT) : undefined;
  const login = plain ? parseLogin(plain) : undefined;
  if (!login || login.expiresAt < Date.now()) {
    throw new ConstellationError('UNAUTHENTICATED', 'login failed: no login is in progress in this browser (it expired after 10 minutes, or cookies are blocked); start again at /login');
  }
  return login;
}

function parseLogin(text: string): LoginState | undefined {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null) return undefined;
    const { verifier, state, nonce, next, expiresAt } = v as Record<string, unknown>;
    if (typeof verifier !== 'string' || typeof state !== 'string' || typeof nonce !== 'string' || typeof next !== 'string' || typeof expiresAt !== 'number') return undefined;
    return { verifier, state, nonce, next, expiresAt };
  } catch {
    return undefined;
  }
}

/** This broker's /callback as the browser reaches it (the provider accepts only registered redirect URIs). */
function callbackUri(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}/callback`;
}

function random(): string {
  return randomBytes(32).toString('base64url');
}

function setCookie(reply: FastifyReply, request: FastifyRequest, name: string, value: string, options: { path: string; maxAgeS: number }): void {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  // Fastify appends Set-Cookie values rather than replacing them.
  reply.header('set-cookie', `${name}=${value}; Path=${options.path}; Max-Age=${Math.floor(options.maxAgeS)}; HttpOnly; SameSite=Lax${secure}`);
}

function clearCookie(reply: FastifyReply, request: FastifyRequest, name: string, path: string): void {
  setCookie(reply, request, name, '', { path, maxAgeS: 0 });
}
