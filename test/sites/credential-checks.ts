/**
 * Credential gates for simulated sites (SimSite.requireCredential): a site that trusts the
 * federation's issuer verifies the JWT it receives against the issuer's JWKS, for its own
 * audience, as a real resource server does; a site with its own tokens knows which user each
 * belongs to.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { CredentialHolder } from './sim-site.js';

/** Accepts JWTs from `issuer` (signature by its JWKS, iss, exp) whose aud is `audience`; the holder is the token's sub. */
export function issuerTokens(issuer: { issuer: string; jwksUri: string }, audience: string): (value: string) => Promise<CredentialHolder | undefined> {
  const jwks = createRemoteJWKSet(new URL(issuer.jwksUri));
  return async (value) => {
    try {
      const { payload } = await jwtVerify(value, jwks, { issuer: issuer.issuer, audience, algorithms: ['RS256'] });
      return typeof payload.sub === 'string' ? { user: payload.sub, audience } : undefined;
    } catch {
      return undefined;
    }
  };
}

/** Accepts the site's own tokens, each belonging to one user (token → user). */
export function siteTokens(owners: Record<string, string>): (value: string) => CredentialHolder | undefined {
  return (value) => (Object.hasOwn(owners, value) ? { user: owners[value] } : undefined);
}
