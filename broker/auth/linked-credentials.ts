/**
 * Linked site tokens: a user hands the broker their own token for a site once
 * (linkSiteCredential); it is stored sealed with AES-256-GCM under CONSTELLATION_SECRET_KEY,
 * bound to the user and the site, and opened only to send it to that site for that user's jobs.
 * A token sealed under a key that has since been rotated out of first place is re-sealed under
 * the current key the next time it is read.
 */
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import {
  deleteSiteCredential, linkedSiteIdsOf, resealSiteCredential, sealedSiteCredential, upsertSiteCredential,
} from '../../registry/store/queries/site-credentials.js';
import { Secret } from './identity.js';
import { SECRET_KEY_ENV, type SecretKeys } from './secret-keys.js';

/** Longest site token accepted, in bytes. */
export const MAX_SITE_TOKEN_BYTES = 8192;

// Tokens travel in an HTTP header or cookie: visible ASCII only, so nothing can split the header.
const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/** The associated data a linked token is sealed with: it opens only for this owner and site. */
function context(owner: string, siteId: string): string {
  return `${owner}|${siteId}`;
}

/** The keys, or IDENTITY_UNAVAILABLE naming the variable that would provide them. */
export function requireKeys(keys: SecretKeys | undefined, what: string): SecretKeys {
  if (!keys) throw new ConstellationError('IDENTITY_UNAVAILABLE', `${SECRET_KEY_ENV} is not set, so the broker cannot ${what} (set it to one or more base64 keys of 32 bytes: openssl rand -base64 32)`);
  return keys;
}

/** A token as given to linkSiteCredential, checked: INVALID_ARGUMENT naming `path` when empty, too long or not header-safe. */
export function checkSiteToken(token: string, path = 'token'): Secret {
  const trimmed = token.trim();
  if (trimmed === '') throw invalidArgument(path, 'must be a non-empty site token');
  if (Buffer.byteLength(trimmed, 'utf8') > MAX_SITE_TOKEN_BYTES) throw invalidArgument(path, `must be at most ${MAX_SITE_TOKEN_BYTES} bytes`, 'maxLength');
  if (!TOKEN_TEXT.test(trimmed)) throw invalidArgument(path, 'must be printable ASCII without spaces (it is sent in an HTTP header or cookie)', 'pattern');
  return new Secret(trimmed);
}

/** Store `owner`'s token for `siteId`, replacing any earlier one. */
export async function linkSiteToken(db: Queryable, keys: SecretKeys, owner: string, siteId: string, token: Secret): Promise<void> {
  await upsertSiteCredential(db, owner, siteId, keys.seal('site-credentials', token.reveal(), context(owner, siteId)));
}

/** Forget `owner`'s token for `siteId` (and the copies kept with their jobs there); true when there was one. */
export function unlinkSiteToken(db: Queryable, owner: string, siteId: string): Promise<boolean> {
  return deleteSiteCredential(db, owner, siteId);
}

/**
 * `owner`'s token for `siteId`, or undefined when none is linked or no configured key opens it
 * any more (the key it was sealed under was dropped: the user links it again). Re-sealed under
 * the current key when it was sealed under an older one.
 */
export async function linkedSiteToken(db: Queryable, keys: SecretKeys, owner: string, siteId: string): Promise<Secret | undefined> {
  const sealed = await sealedSiteCredential(db, owner, siteId);
  if (sealed === undefined) return undefined;
  const plain = keys.open('site-credentials', sealed, context(owner, siteId));
  if (plain === undefined) return undefined;
  if (keys.isStale(sealed)) await resealSiteCredential(db, owner, siteId, sealed, keys.seal('site-credentials', plain, context(owner, siteId)));
  return new Secret(plain);
}

/** Ids of the sites `owner` linked a token for (for `me.linkedSites`); never the tokens. */
export function linkedSiteIds(db: Queryable, owner: string): Promise<string[]> {
  return linkedSiteIdsOf(db, owner);
}
