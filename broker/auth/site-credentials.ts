/**
 * The credential each site gets, by its strategy in federation.yaml: the broker's own for
 * harvests (an environment variable, or a client-credentials token from the issuer), and the
 * submitting user's for jobs (a token exchanged for the site's audience, or the token the user
 * linked). Every credential is sent in the site's own form: `credentials.cookie` (MAST's
 * mast_token), `credentials.header` (SciServer X-Auth-Token, Data Lab X-DL-AuthToken), else a
 * bearer token (RSP, CANFAR).
 */
import type { AdapterSite, SiteCredential } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import type { SiteConfig } from '../config/config.js';
import { ownerOf, type Identity } from './identity.js';
import { linkedSiteToken } from './linked-credentials.js';
import { SECRET_KEY_ENV, type SecretKeys } from './secret-keys.js';
import { clientCredentialsToken, exchangedToken, type TokenIssuer } from './token-exchange.js';

/** `value` in the form `site` takes a credential: its cookie, its header, or a bearer token. */
export function credentialIn(site: SiteConfig, value: string): SiteCredential {
  if (site.credentials.cookie) return { kind: 'cookie', name: site.credentials.cookie, value };
  if (site.credentials.header) return { kind: 'header', name: site.credentials.header, value };
  return { kind: 'bearer', token: value };
}

/**
 * The credential named by `credentials.env`, in the site's form. Anonymous when the strategy is
 * anonymous or the variable is unset.
 */
export function harvestCredential(site: SiteConfig, env: NodeJS.ProcessEnv = process.env): SiteCredential {
  const value = site.credentials.env ? env[site.credentials.env] : undefined;
  if (site.credentials.strategy === 'anonymous' || !value) return { kind: 'anonymous' };
  return credentialIn(site, value);
}

/**
 * The broker's own credential for a harvest: for a `client-credentials` site a token the issuer
 * gives the broker's client for the site's audience (cached until shortly before it expires),
 * otherwise the environment's (harvestCredential).
 */
export async function harvestCredentialFor(site: SiteConfig, env: NodeJS.ProcessEnv, issuer: TokenIssuer | undefined): Promise<SiteCredential> {
  if (site.credentials.strategy !== 'client-credentials') return harvestCredential(site, env);
  if (!issuer) {
    throw new ConstellationError('IDENTITY_UNAVAILABLE', `site ${site.id} uses client-credentials, but the federation has no identity provider client to get a token from (identity.issuer and identity.clientId in federation.yaml)`);
  }
  const issued = await clientCredentialsToken(issuer, audienceOf(site));
  return credentialIn(site, issued.token.reveal());
}

/** The audience of a site's tokens: credentials.audience, else the site id. */
export function audienceOf(site: SiteConfig): string {
  return site.credentials.audience ?? site.id;
}

/** True when jobs at `site` need a credential of the submitting user's own. */
export function needsUserCredential(site: SiteConfig): boolean {
  return site.credentials.strategy !== 'anonymous';
}

/** What resolving a user's credential needs. */
export interface UserCredentialSources {
  db: Queryable;
  /** The issuer client (token exchange); undefined when the federation has none. */
  issuer?: TokenIssuer;
  keys?: SecretKeys;
}

/** A user's credential for one site, and when it stops working (undefined: not known). */
export interface UserSiteCredential {
  credential: SiteCredential;
  expiresAt?: number;
}

/** Why a caller has no credential for a site: the error kind it amounts to, and what to do. */
export interface CredentialRefusal {
  refused: { kind: ErrorKind; message: string };
}

function refusal(kind: ErrorKind, message: string): CredentialRefusal {
  return { refused: { kind, message } };
}

/**
 * The submitting caller's credential for jobs at `site`, or the reason there is none (a
 * sentence saying what to do). Never the broker's own: an anonymous caller, or a user without a
 * linked token, gets a reason instead. A `client-credentials` site takes the issuer's tokens, so
 * a user's jobs there get the user's token exchanged for the site's audience.
 */
export async function userSiteCredential(site: SiteConfig, identity: Identity, sources: UserCredentialSources): Promise<UserSiteCredential | CredentialRefusal> {
  const strategy = site.credentials.strategy;
  if (strategy === 'anonymous') return { credential: { kind: 'anonymous' } };
  if (identity.kind !== 'user') {
    const what = strategy === 'linked' ? 'log in and link your token for it with linkSiteCredential' : 'log in';
    return refusal('UNAUTHENTICATED', `site ${site.id} runs jobs only with the submitter's own credential; ${what}`);
  }
  if (strategy === 'linked') {
    if (!sources.keys) return refusal('IDENTITY_UNAVAILABLE', `site ${site.id} needs a linked token, and the broker has no ${SECRET_KEY_ENV} to keep one`);
    const token = await linkedSiteToken(sources.db, sources.keys, ownerOf(identity), site.id);
    if (!token) return refusal('UNAUTHENTICATED', `you have no token linked for site ${site.id}; link one with linkSiteCredential(siteId: "${site.id}", token: ...)`);
    return { credential: credentialIn(site, token.reveal()) };
  }
  if (!sources.issuer) return refusal('IDENTITY_UNAVAILABLE', `site ${site.id} takes tokens exchanged at the federation's identity provider, and the broker has no client there (identity.clientId)`);
  try {
    const issued = await exchangedToken(sources.issuer, identity, audienceOf(site));
    return { credential: credentialIn(site, issued.token.reveal()), expiresAt: issued.expiresAt };
  } catch (err) {
    if (!isConstellationError(err)) throw err;
    // The provider's own words say why (refused, unreachable); they carry no token.
    return refusal(err.kind, `no token for site ${site.id}: ${err.message}${err.kind === 'UNAUTHENTICATED' ? '; log in again' : ''}`);
  }
}

/** What a user does when `site` refuses the credential a job ran with. */
export function refusedCredentialAdvice(site: SiteConfig): string {
  if (site.credentials.strategy === 'linked') return `link a new token for ${site.id} with linkSiteCredential(siteId: "${site.id}", token: ...) and submit the job again`;
  if (site.credentials.strategy === 'anonymous') return `site ${site.id} is configured for anonymous access; ask the federation operator to check its credentials strategy`;
  return `log in again (constellation login) and submit the job again, so the broker exchanges a fresh token for ${site.id}`;
}

/** What an adapter is told about a configured site. */
export function adapterSite(site: SiteConfig): AdapterSite {
  return { id: site.id, name: site.name, platform: site.adapter, url: site.url, options: site.options };
}
