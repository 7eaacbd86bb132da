/**
 * Browser sessions: a row per login in the database (so every replica knows it), the tokens
 * sealed under CONSTELLATION_SECRET_KEY, and a cookie that carries only the signed session id.
 * The access token is refreshed shortly before it expires, by one replica at a time.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isConstellationError } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import {
  claimRefresh,
  deleteExpiredSessions,
  deleteSession,
  findSession,
  insertSession,
  releaseRefresh,
  storeRefreshed,
  type SessionRow,
} from '../../registry/store/queries/sessions.js';
import { Secret } from './identity.js';
import type { SessionTokens } from './identity-services.js';
import type { OidcProvider, Tokens } from './provider.js';
import type { SecretKeys } from './secret-keys.js';

/** Longest a session lasts, whatever its tokens say. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3_600_000;
/** An access token expiring within this is refreshed before it is used. */
export const REFRESH_WITHIN_MS = 60_000;
/** How long one replica's claim to refresh a session lasts (the provider's request timeout is 10 s). */
const REFRESH_LEASE_MS = 20_000;
/** How long a request waits for another replica's refresh when its own token has already expired. */
const REFRESH_WAIT_MS = 25_000;
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

type TokenKind = 'access' | 'refresh' | 'id';

export interface SessionStoreOptions {
  maxAgeMs?: number;
  refreshWithinMs?: number;
}

/** Server-side sessions; implements what the request hook needs (`accessTokenFor`) and what /login and /logout need. */
export class SessionStore implements SessionTokens {
  readonly #db: Queryable;
  readonly #keys: SecretKeys;
  readonly #provider: Pick<OidcProvider, 'refresh' | 'issuer'>;
  readonly #maxAgeMs: number;
  readonly #refreshWithinMs: number;
  /** Refreshes under way in this process, so concurrent requests of one browser share one. */
  readonly #refreshing = new Map<string, Promise<Secret | undefined>>();

  constructor(db: Queryable, keys: SecretKeys, provider: Pick<OidcProvider, 'refresh' | 'issuer'>, options: SessionStoreOptions = {}) {
    this.#db = db;
    this.#keys = keys;
    this.#provider = provider;
    this.#maxAgeMs = options.maxAgeMs ?? SESSION_MAX_AGE_MS;
    this.#refreshWithinMs = options.refreshWithinMs ?? REFRESH_WITHIN_MS;
  }

  /** Start a session for freshly issued tokens; returns the cookie value and its lifetime in seconds. */
  async create(tokens: Tokens, subject: string): Promise<{ cookie: string; maxAgeS: number }> {
    await deleteExpiredSessions(this.#db); // housekeeping at the rare moment a session begins
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    // Without a refresh token the session cannot outlive its access token.
    const expiresAt = tokens.refreshToken ? now + this.#maxAgeMs : Math.min(now + this.#maxAgeMs, tokens.expiresAt);
    await insertSession(this.#db, {
      id,
      subject,
      issuer: this.#provider.issuer,
      accessToken: this.#seal(id, 'access', tokens.accessToken),
      ...(tokens.refreshToken ? { refreshToken: this.#seal(id, 'refresh', tokens.refreshToken) } : {}),
      ...(tokens.idToken ? { idToken: this.#seal(id, 'id', tokens.idToken) } : {}),
      accessExpiresAt: new Date(tokens.expiresAt),
      expiresAt: new Date(expiresAt),
    });
    return { cookie: this.#keys.sign('session-cookie', id), maxAgeS: Math.max(1, Math.floor((expiresAt - now) / 1000)) };
  }

  /** The session's access token, refreshed first when it expires within a minute; undefined for an unknown, ended, tampered or foreign cookie. */
  async accessTokenFor(cookie: string): Promise<Secret | undefined> {
    const id = this.#sessionId(cookie);
    if (!id) return undefined;
    const row = await findSession(this.#db, id);
    if (!row || row.issuer !== this.#provider.issuer) return undefined;
    if (row.accessExpiresAt.getTime() - Date.now() > this.#refreshWithinMs) return this.#open(row, 'access');
    let pending = this.#refreshing.get(id);
    if (!pending) {
      pending = this.#refresh(row).finally(() => this.#refreshing.delete(id));
      this.#refreshing.set(id, pending);
    }
    return pending;
  }

  /** End the session a cookie names (logout); returns its ID token for the provider's end-session hint. */
  async end(cookie: string): Promise<{ idToken?: Secret } | undefined> {
    const id = this.#sessionId(cookie);
    if (!id) return undefined;
    const row = await deleteSession(this.#db, id);
    if (!row) return undefined;
    const idToken = this.#open(row, 'id');
    return idToken ? { idToken } : {};
  }

  async #refresh(first: SessionRow): Promise<Secret | undefined> {
    const deadline = Date.now() + REFRESH_WAIT_MS;
    let row: SessionRow | undefined = first;
    for (;;) {
      const claimed = await claimRefresh(this.#db, row.id, this.#refreshWithinMs, REFRESH_LEASE_MS);
      if (claimed) return this.#refreshClaimed(claimed);
      // Someone else refreshed it meanwhile, or is refreshing it now.
      row = await findSession(this.#db, row.id);
      if (!row) return undefined;
      const left = row.accessExpiresAt.getTime() - Date.now();
      if (left > this.#refreshWithinMs) return this.#open(row, 'access');
      // The current token still works for a while: use it rather than wait for the other replica.
      if (left > 5_000) return this.#open(row, 'access');
      if (Date.now() > deadline) return undefined;
      await sleep(100);
    }
  }

  async #refreshClaimed(row: SessionRow): Promise<Secret | undefined> {
    const refreshToken = this.#open(row, 'refresh');
    if (!refreshToken) {
      // Nothing to refresh with: the session lives as long as its access token.
      await releaseRefresh(this.#db, row.id);
      return row.accessExpiresAt.getTime() > Date.now() ? this.#open(row, 'access') : this.#drop(row.id);
    }
    let tokens: Tokens;
    try {
      tokens = await this.#provider.refresh(refreshToken);
    } catch (err) {
      // Refused (revoked, expired, user disabled): the session is over.
      if (isConstellationError(err) && err.kind === 'UNAUTHENTICATED') return this.#drop(row.id);
      await releaseRefresh(this.#db, row.id);
      if (row.accessExpiresAt.getTime() > Date.now()) return this.#open(row, 'access');
      throw err;
    }
    await storeRefreshed(this.#db, row.id, {
      accessToken: this.#seal(row.id, 'access', tokens.accessToken),
      ...(tokens.refreshToken ? { refreshToken: this.#seal(row.id, 'refresh', tokens.refreshToken) } : {}),
      ...(tokens.idToken ? { idToken: this.#seal(row.id, 'id', tokens.idToken) } : {}),
      accessExpiresAt: new Date(tokens.expiresAt),
    });
    return tokens.accessToken;
  }

  async #drop(id: string): Promise<undefined> {
    await deleteSession(this.#db, id);
    return undefined;
  }

  #sessionId(cookie: string): string | undefined {
    const id = this.#keys.verify('session-cookie', cookie);
    return id && ID_PATTERN.test(id) ? id : undefined;
  }

  #seal(id: string, kind: TokenKind, token: Secret): string {
    return this.#keys.seal('session-tokens', token.reveal(), `session ${id} ${kind}`);
  }

  /** A stored token, or undefined when absent or sealed under a key no longer configured. */
  #open(row: SessionRow, kind: TokenKind): Secret | undefined {
    const sealed = kind === 'access' ? row.accessToken : kind === 'refresh' ? row.refreshToken : row.idToken;
    if (!sealed) return undefined;
    const plain = this.#keys.open('session-tokens', sealed, `session ${row.id} ${kind}`);
    return plain === undefined ? undefined : new Secret(plain);
  }
}
