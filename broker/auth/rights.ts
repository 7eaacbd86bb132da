/**
 * Who may change the registry: publish a site's capabilities (its operators, an admin, or the
 * holder of the site's publish key) and start harvests (admins). A federation with
 * `registration: {open: true}` is a development federation where anyone may do both.
 */
import { ConstellationError } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { isAdmin, type Identity } from './identity.js';
import { constantTimeEqual } from './secret-keys.js';

/** The header a site presents its publish key in. */
export const PUBLISH_KEY_HEADER = 'x-publish-key';

/** The registry-changing rights of this federation's callers. */
export class Rights {
  readonly #open: boolean;
  readonly #declared: Set<string>;
  /** siteId → its publish key, for the sites that have one set in the environment. */
  readonly #publishKeys = new Map<string, string>();

  constructor(config: Config, env: NodeJS.ProcessEnv) {
    this.#open = config.registration.open;
    this.#declared = new Set(config.sites.map((s) => s.id));
    for (const site of config.sites) {
      const key = site.publishKeyEnv ? env[site.publishKeyEnv] : undefined;
      if (key) this.#publishKeys.set(site.id, key);
    }
  }

  /** Throws UNAUTHENTICATED (no credential) or FORBIDDEN unless `identity` or `publishKey` may publish `siteId`'s capabilities. */
  checkPublish(identity: Identity, siteId: string, publishKey?: string): void {
    if (this.#open) return;
    // The member list is public (the sites query): a site outside it is named as such; only an
    // admin goes on, to the registry's own judgement of sites registered earlier.
    if (!this.#declared.has(siteId) && !isAdmin(identity)) throw new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not a member of this federation`);
    if (publishKey !== undefined) {
      const expected = this.#publishKeys.get(siteId);
      if (expected !== undefined && constantTimeEqual(publishKey, expected)) return;
      throw new ConstellationError('UNAUTHENTICATED', `the publish key given is not the key of site "${siteId}"`);
    }
    if (identity.kind === 'user' && (identity.roles.admin || identity.roles.operatorOf.includes(siteId))) return;
    const how = `an operator's token for "${siteId}" (identity.roles.operators in federation.yaml), an admin's, or the site's publish key in the ${PUBLISH_KEY_HEADER} header`;
    if (identity.kind === 'anonymous') throw new ConstellationError('UNAUTHENTICATED', `publishing the capabilities of site "${siteId}" needs ${how}`);
    throw new ConstellationError('FORBIDDEN', `you are not an operator of site "${siteId}"; publishing its capabilities needs ${how}`);
  }

  /** Throws UNAUTHENTICATED or FORBIDDEN unless `identity` is an admin; `what` names the action. */
  checkAdmin(identity: Identity, what: string): void {
    if (this.#open || isAdmin(identity)) return;
    if (identity.kind === 'anonymous') throw new ConstellationError('UNAUTHENTICATED', `${what} needs an admin's token (identity.roles.admin in federation.yaml); the local CLI (constellation harvest) needs none`);
    throw new ConstellationError('FORBIDDEN', `${what} is for admins (identity.roles.admin in federation.yaml); the local CLI (constellation harvest) needs no token`);
  }
}
