/** GraphQL for linked site tokens: a user links their own token for a site once, or unlinks it. The token is never returned. */
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import { ANONYMOUS_IDENTITY, ownerOf, type Identity } from '../auth/identity.js';
import { checkSiteToken, linkSiteToken, requireKeys, unlinkSiteToken } from '../auth/linked-credentials.js';
import type { SiteConfig } from '../config/config.js';
import type { Services } from '../factory.js';

interface CredentialContext {
  services: Services;
  identity?: Identity;
  db?: { release(): Promise<void> };
}

/** The caller, who must be logged in: UNAUTHENTICATED otherwise. */
function userOf(ctx: CredentialContext, what: string): Identity & { kind: 'user' } {
  const identity = ctx.identity ?? ANONYMOUS_IDENTITY;
  if (identity.kind !== 'user') throw new ConstellationError('UNAUTHENTICATED', `${what} needs you to be logged in (a bearer token or a browser session): a token is linked to its user`);
  return identity;
}

/** The configured site `siteId`, or UNKNOWN_SITE. */
function siteOf(services: Services, siteId: string): SiteConfig {
  const site = services.config.sites.find((s) => s.id === siteId);
  if (!site) throw new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not configured in federation "${services.config.federation.name}"`);
  return site;
}

/** Resolvers merged into the root Mutation. */
export const credentialResolvers = {
  Mutation: {
    linkSiteCredential: async (_root: unknown, { siteId, token }: { siteId: string; token: string }, ctx: CredentialContext): Promise<boolean> => {
      const user = userOf(ctx, 'linkSiteCredential');
      const site = siteOf(ctx.services, siteId);
      if (site.credentials.strategy !== 'linked') {
        throw invalidArgument('siteId', `names site ${site.id}, whose credentials strategy is ${site.credentials.strategy}, not linked: the broker would never send a token linked for it`, 'strategy');
      }
      const secret = checkSiteToken(token);
      const keys = requireKeys(ctx.services.identity?.keys, 'keep linked site tokens');
      await ctx.db?.release();
      await linkSiteToken(ctx.services.pool, keys, ownerOf(user), site.id, secret);
      return true;
    },
    unlinkSiteCredential: async (_root: unknown, { siteId }: { siteId: string }, ctx: CredentialContext): Promise<boolean> => {
      const user = userOf(ctx, 'unlinkSiteCredential');
      siteOf(ctx.services, siteId);
      await ctx.db?.release();
      return unlinkSiteToken(ctx.services.pool, ownerOf(user), siteId);
    },
  },
};
