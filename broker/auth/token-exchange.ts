/**
 * Tokens the broker gets from the federation's issuer for a site: a user's token exchanged for
 * one with the site's audience (RFC 8693), or the broker's own (client credentials). Each is
 * cached until shortly before it expires, in a bounded LRU, and concurrent requests for the same
 * token share one call to the issuer (single flight), so a burst of jobs exchanges once.
 */
import type { Secret, User } from './identity.js';

/** A token the issuer handed out, and when it expires (epoch milliseconds). */
export interface IssuedToken {
  token: Secret;
  expiresAt: number;
}

/** What the broker asks the issuer for (broker/auth/provider.ts implements it with openid-client). */
export interface TokenIssuer {
  /** RFC 8693: `subjectToken` exchanged for a token whose audience is `audience`. */
  exchange(subjectToken: Secret, audience: string): Promise<IssuedToken>;
  /** The broker's own token for `audience` (client credentials grant). */
  clientCredentials(audience: string): Promise<IssuedToken>;
}

/** A token is handed out from the cache only while it has at least this long left. */
export const TOKEN_MARGIN_MS = 60_000;

/** Cached tokens kept at most (least recently used go first). */
export const TOKEN_CACHE_ENTRIES = 10_000;

/** A bounded cache of issued tokens with single flight per key. */
export class TokenCache {
  readonly #entries = new Map<string, IssuedToken>();
  readonly #inFlight = new Map<string, Promise<IssuedToken>>();
  readonly #max: number;
  readonly #marginMs: number;
  readonly #now: () => number;

  constructor(options: { maxEntries?: number; marginMs?: number; now?: () => number } = {}) {
    this.#max = options.maxEntries ?? TOKEN_CACHE_ENTRIES;
    this.#marginMs = options.marginMs ?? TOKEN_MARGIN_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The cached token for `key` while it has more than the margin left, else `issue()`'s (one call however many ask at once). */
  async get(key: string, issue: () => Promise<IssuedToken>): Promise<IssuedToken> {
    const cached = this.#entries.get(key);
    if (cached && cached.expiresAt - this.#marginMs > this.#now()) {
      // Map order is the LRU order: a hit moves the entry to the back.
      this.#entries.delete(key);
      this.#entries.set(key, cached);
      return cached;
    }
    if (cached) this.#entries.delete(key);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const call = issue().then(
      (issued) => {
        this.#inFlight.delete(key);
        // A token that would be stale at once is used for this request only.
        if (issued.expiresAt - this.#marginMs > this.#now()) this.#remember(key, issued);
        return issued;
      },
      (err: unknown) => {
        this.#inFlight.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, call);
    return call;
  }

  /** Drop every cached token of keys starting with `prefix` (a user whose token a site refused). */
  forget(prefix: string): void {
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) this.#entries.delete(key);
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.#entries.size;
  }

  #remember(key: string, issued: IssuedToken): void {
    this.#entries.set(key, issued);
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

// One cache per issuer client: the provider object lives as long as the broker's identity services.
const caches = new WeakMap<TokenIssuer, TokenCache>();

function cacheOf(issuer: TokenIssuer): TokenCache {
  let cache = caches.get(issuer);
  if (!cache) {
    cache = new TokenCache();
    caches.set(issuer, cache);
  }
  return cache;
}

/** `user`'s token exchanged for `audience`, cached per (user, audience). */
export function exchangedToken(issuer: TokenIssuer, user: User, audience: string): Promise<IssuedToken> {
  return cacheOf(issuer).get(`user\u0000${user.subject}\u0000${audience}`, () => issuer.exchange(user.token, audience));
}

/** The broker's own client-credentials token for `audience`, cached. */
export function clientCredentialsToken(issuer: TokenIssuer, audience: string): Promise<IssuedToken> {
  return cacheOf(issuer).get(`client\u0000${audience}`, () => issuer.clientCredentials(audience));
}
