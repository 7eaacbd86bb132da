/**
 * The owner's site credentials a thread runs with. Resolved when the thread starts, while the
 * owner's token is at hand, and kept sealed with the thread ('job-credentials', bound to the
 * thread and the site), so whichever broker drives the thread — the one that started it, or
 * another that took it over — submits each step as the owner (as job-credentials.ts does for jobs).
 */
import { ConstellationError } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import { resealThreadCredential, sealedThreadCredentials, type SealedThreadCredential } from '../../registry/store/queries/thread-provenance.js';
import { SECRET_KEY_ENV, type SecretKeys } from '../auth/secret-keys.js';
import type { UserSiteCredential } from '../auth/site-credentials.js';
import { parseSiteCredential } from '../jobs/job-credentials.js';

/** The associated data a thread credential is sealed with: it opens only for this thread at this site. */
function context(threadId: string, siteId: string): string {
  return `thread:${threadId}|${siteId}`;
}

/** `credentials` sealed for thread `threadId` (nothing to seal is an empty list; credentials without keys are IDENTITY_UNAVAILABLE). */
export function sealThreadCredentials(keys: SecretKeys | undefined, threadId: string, credentials: ReadonlyMap<string, UserSiteCredential>): SealedThreadCredential[] {
  if (credentials.size === 0) return [];
  if (!keys) throw new ConstellationError('IDENTITY_UNAVAILABLE', `${SECRET_KEY_ENV} is not set, so the broker cannot keep the thread's site credentials`);
  return [...credentials].map(([siteId, c]) => ({
    siteId,
    sealed: keys.seal('job-credentials', JSON.stringify(c.credential), context(threadId, siteId)),
    expiresAt: c.expiresAt === undefined ? null : new Date(c.expiresAt),
  }));
}

/**
 * The credentials kept for thread `threadId`, by site, opened (each re-sealed under the current
 * key when an older one sealed it). A credential that no longer opens (the key was retired) is
 * left out: the step's job then has none for that site and fails there as the owner's would.
 */
export async function keptThreadCredentials(db: Queryable, keys: SecretKeys | undefined, threadId: string): Promise<Map<string, UserSiteCredential>> {
  const out = new Map<string, UserSiteCredential>();
  if (!keys) return out;
  for (const kept of await sealedThreadCredentials(db, threadId)) {
    const plain = keys.open('job-credentials', kept.sealed, context(threadId, kept.siteId));
    if (plain === undefined) continue;
    const credential = parseSiteCredential(plain);
    if (credential === undefined) continue;
    if (keys.isStale(kept.sealed)) await resealThreadCredential(db, threadId, kept.siteId, kept.sealed, keys.seal('job-credentials', plain, context(threadId, kept.siteId)));
    out.set(kept.siteId, { credential, ...(kept.expiresAt ? { expiresAt: kept.expiresAt.getTime() } : {}) });
  }
  return out;
}
