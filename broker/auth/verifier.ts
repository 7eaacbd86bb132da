/**
 * Bearer token verification against the issuer's JWKS (jose): allowed algorithms only, exact
 * issuer, the broker's audience, exp and nbf within the configured skew. Verified tokens are
 * remembered until they expire, so a client sending the same token on every request pays for
 * one signature check.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ConstellationError } from '../../registry/model/errors.js';
import type { IdentityConfig } from '../config/config.js';
import { rolesFor, Secret, type User } from './identity.js';

/** How many verified tokens are remembered (oldest forgotten first). */
const CACHE_ENTRIES = 10_000;
/** A key id the JWKS does not hold sends the verifier back to the issuer at most this often. */
const JWKS_COOLDOWN_MS = 10_000;
/** The JWKS is read again at least this often, so removed keys stop being accepted. */
const JWKS_MAX_AGE_MS = 600_000;
/** The issuer's JWKS must answer within this. */
const JWKS_TIMEOUT_MS = 5_000;
/** Longest token accepted, in characters: a JWT with generous claims is a few KiB (and Node refuses headers past 16 KiB). */
export const MAX_TOKEN_CHARS = 8_192;

/** Verifies bearer tokens for one issuer and audience; one per broker process. */
export class TokenVerifier {
  readonly #config: IdentityConfig;
  readonly #keys: ReturnType<typeof createRemoteJWKSet>;
  readonly #verified = new Map<string, User>();

  constructor(config: IdentityConfig, jwksUri: URL) {
    this.#config = config;
    this.#keys = createRemoteJWKSet(jwksUri, { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: JWKS_TIMEOUT_MS });
  }

  /** The user a token names; UNAUTHENTICATED saying why when it is not acceptable, IDENTITY_UNAVAILABLE when the JWKS cannot be read. */
  async verify(token: string): Promise<User> {
    if (token.length > MAX_TOKEN_CHARS) throw unauthenticated(`the bearer token is longer than ${MAX_TOKEN_CHARS} characters`);
    // Keyed by the token itself (it lives in this process's memory anyway, inside the User's Secret):
    // a hit costs one string hash, not a digest per request.
    const known = this.#verified.get(token);
    if (known && known.expiresAt > Date.now()) return known;
    if (known) this.#verified.delete(token);
    const user = this.#user(await this.#claims(token), token);
    if (this.#verified.size >= CACHE_ENTRIES) this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(token, user);
    return user;
  }

  async #claims(token: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.#keys, {
        issuer: this.#config.issuer,
        audience: this.#config.audience,
        algorithms: this.#config.algorithms,
        clockTolerance: this.#config.clockSkewS,
        requiredClaims: ['exp', 'sub'],
      });
      return payload;
    } catch (err) {
      throw refusal(err);
    }
  }

  #user(claims: JWTPayload, token: string): User {
    const groups = groupsClaim(claims, this.#config.groupsClaim);
    return {
      kind: 'user',
      subject: claims.sub as string, // required above
      ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
      ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
      groups,
      roles: rolesFor(groups, this.#config.roles),
      token: new Secret(token),
      expiresAt: (claims.exp as number) * 1000,
    };
  }
}

/** The caller's groups from `claim`: the claim by its full name first (`wlcg.groups`), else a dotted path (`realm_access.roles`); an array of strings or one space-separated string. */
export function groupsClaim(claims: JWTPayload, claim: string): string[] {
  let value: unknown = claims[claim];
  if (value === undefined && claim.includes('.')) {
    value = claim.split('.').reduce<unknown>((at, part) => (at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined), claims);
  }
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  return [];
}

function unauthenticated(why: string, cause?: unknown): ConstellationError {
  return new ConstellationError('UNAUTHENTICATED', `${why}; log in again (constellation login) or send a valid token`, cause === undefined ? {} : { cause });
}

/** jose's refusal as ours: what was wrong, never the token. */
function refusal(err: unknown): ConstellationError {
  if (err instanceof joseErrors.JWTExpired) return unauthenticated('the bearer token has expired', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const why = err.claim === 'nbf' ? 'is not valid yet (nbf)' : err.claim === 'iss' ? 'was issued by another issuer' : err.claim === 'aud' ? 'is not meant for this broker (aud)' : `has an unacceptable "${err.claim}" claim (${err.reason})`;
    return unauthenticated(`the bearer token ${why}`, err);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthenticated('the bearer token is signed with an algorithm this broker does not accept', err);
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return unauthenticated("the bearer token's signing key is not one of the issuer's keys", err);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthenticated("the bearer token's signature does not verify", err);
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || (err instanceof Error && !(err instanceof joseErrors.JOSEError))) {
    return new ConstellationError('IDENTITY_UNAVAILABLE', "the identity provider's signing keys could not be read; try again shortly", { cause: err });
  }
  return unauthenticated('the bearer token is not a valid signed JWT', err);
}
