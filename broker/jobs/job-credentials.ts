/**
 * The submitter's credentials a job runs with. They are resolved at submit, while the user's
 * bearer token is at hand (a token exchanged for each site's audience, or the token the user
 * linked), then kept sealed ('job-credentials', bound to the job and the site) in the database,
 * so the broker that polls, cancels or reads the job later (another replica, or this one after
 * a restart) calls the site as the submitter: never as the broker, never as anyone else.
 */
import type { SiteCredential } from '../../registry/model/adapter.js';
import { ConstellationError, type ErrorKind, type Violation } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import { resealJobCredential, saveJobCredentials, sealedJobCredential } from '../../registry/store/queries/site-credentials.js';
import type { Identity } from '../auth/identity.js';
import { SECRET_KEY_ENV, type SecretKeys } from '../auth/secret-keys.js';
import { needsUserCredential, userSiteCredential, type UserCredentialSources, type UserSiteCredential } from '../auth/site-credentials.js';
import type { Config } from '../config/config.js';
import type { JobCandidate } from './plan.js';

/** A candidate the caller has no credential for, and why. */
export interface CandidateRefusal {
  siteId: string;
  kind: ErrorKind;
  message: string;
}

/** The candidates a caller can run at, the credential for each that needs one, and the refused rest. */
export interface CredentialedCandidates {
  candidates: JobCandidate[];
  credentials: Map<string, UserSiteCredential>;
  refusals: CandidateRefusal[];
}

/**
 * Resolve the caller's credential for every candidate, and for each site in `alsoFor` (where
 * the job's result is staged). Without an identity provider the federation is single-tenant
 * (every caller is anonymous and jobs use the sites' configured credentials, as before identity
 * existed), so nothing is resolved here. A candidate the caller has no credential for is dropped
 * with its reason; when none is left, or a site of `alsoFor` has none, the submit fails with the
 * first reason's kind (UNAUTHENTICATED for "log in" or "link a token") and every reason.
 */
export async function credentialedCandidates(
  config: Config,
  identity: Identity,
  candidates: readonly JobCandidate[],
  sources: UserCredentialSources,
  alsoFor: readonly string[] = [],
): Promise<CredentialedCandidates> {
  const credentials = new Map<string, UserSiteCredential>();
  if (!config.identity) return { candidates: [...candidates], credentials, refusals: [] };
  const sites = new Map(config.sites.map((s) => [s.id, s]));
  const kept: JobCandidate[] = [];
  const refusals: CandidateRefusal[] = [];
  for (const candidate of candidates) {
    const site = sites.get(candidate.siteId);
    // A site only published (not configured) is refused later by the site resolver, as before.
    if (!site || !needsUserCredential(site)) {
      kept.push(candidate);
      continue;
    }
    const resolved = await userSiteCredential(site, identity, sources);
    if ('refused' in resolved) {
      refusals.push({ siteId: site.id, ...resolved.refused });
      continue;
    }
    if (!sources.keys) {
      refusals.push({ siteId: site.id, kind: 'IDENTITY_UNAVAILABLE', message: `the broker has no ${SECRET_KEY_ENV} to keep your credential for site ${site.id} while the job runs` });
      continue;
    }
    credentials.set(site.id, resolved);
    kept.push(candidate);
  }
  if (kept.length === 0) throw noCredential(refusals);
  for (const siteId of alsoFor) {
    const site = sites.get(siteId);
    if (!site || !needsUserCredential(site) || credentials.has(siteId)) continue;
    const resolved = await userSiteCredential(site, identity, sources);
    if ('refused' in resolved) throw noCredential([{ siteId, ...resolved.refused }]);
    credentials.set(siteId, resolved);
  }
  return { candidates: kept, credentials, refusals };
}

function noCredential(refusals: readonly CandidateRefusal[]): ConstellationError {
  const violations: Violation[] = refusals.map((r) => ({ path: `candidates/${r.siteId}`, rule: 'CREDENTIAL', message: r.message }));
  return new ConstellationError(refusals[0].kind, `this job cannot run with your credentials: ${refusals.map((r) => r.message).join('; ')}`, { violations });
}

/** The associated data a job credential is sealed with: it opens only for this job at this site. */
function context(jobId: string, siteId: string): string {
  return `${jobId}|${siteId}`;
}

/** Keep `credentials` for job `jobId`, sealed. */
export async function keepJobCredentials(db: Queryable, keys: SecretKeys | undefined, jobId: string, credentials: ReadonlyMap<string, UserSiteCredential>): Promise<void> {
  if (credentials.size === 0) return;
  if (!keys) throw new ConstellationError('IDENTITY_UNAVAILABLE', `${SECRET_KEY_ENV} is not set, so the broker cannot keep the job's site credentials`);
  await saveJobCredentials(db, jobId, [...credentials].map(([siteId, c]) => ({
    siteId,
    sealed: keys.seal('job-credentials', JSON.stringify(c.credential), context(jobId, siteId)),
    expiresAt: c.expiresAt === undefined ? null : new Date(c.expiresAt),
  })));
}

/** The credential kept for job `jobId` at `siteId` (re-sealed under the current key when an older one sealed it), or undefined. */
export async function keptJobCredential(db: Queryable, keys: SecretKeys | undefined, jobId: string, siteId: string): Promise<SiteCredential | undefined> {
  if (!keys) return undefined;
  const sealed = await sealedJobCredential(db, jobId, siteId);
  if (sealed === undefined) return undefined;
  const plain = keys.open('job-credentials', sealed, context(jobId, siteId));
  if (plain === undefined) return undefined;
  if (keys.isStale(sealed)) await resealJobCredential(db, jobId, siteId, sealed, keys.seal('job-credentials', plain, context(jobId, siteId)));
  return parseSiteCredential(plain);
}

/** A SiteCredential read back from its JSON, checked field by field (undefined when it is not one). */
export function parseSiteCredential(text: string): SiteCredential | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || !('kind' in value)) return undefined;
  const fields: Record<string, unknown> = Object.fromEntries(Object.entries(value));
  const str = (key: string): string | undefined => {
    const v = fields[key];
    return typeof v === 'string' ? v : undefined;
  };
  switch (value.kind) {
    case 'anonymous':
      return { kind: 'anonymous' };
    case 'bearer': {
      const token = str('token');
      return token === undefined ? undefined : { kind: 'bearer', token };
    }
    case 'header':
    case 'cookie': {
      const name = str('name');
      const v = str('value');
      return name === undefined || v === undefined ? undefined : { kind: value.kind, name, value: v };
    }
    case 'basic': {
      const username = str('username');
      const password = str('password');
      return username === undefined || password === undefined ? undefined : { kind: 'basic', username, password };
    }
    default:
      return undefined;
  }
}
