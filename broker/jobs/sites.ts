/** Which adapter and credential run a job at a site: the sites federation.yaml declares. */
import type { Adapter } from '../../registry/model/adapter.js';
import type { Platform } from '../../registry/model/capability.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { adapterSite, harvestCredential } from '../auth/site-credentials.js';
import type { Config } from '../config/config.js';
import type { SiteResolver } from './service.js';

/**
 * A resolver over the configured sites. Jobs run with the broker's own credential for the
 * site until per-user identities arrive; a site only published (not configured) has no adapter
 * settings, so jobs cannot go there.
 */
export function configuredSites(config: Config, adapterFor: (kind: Platform) => Adapter, env: NodeJS.ProcessEnv = process.env): SiteResolver {
  const sites = new Map(config.sites.map((s) => [s.id, s]));
  return (siteId) => {
    const site = sites.get(siteId);
    if (!site) throw new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not configured in federation "${config.federation.name}", so the broker cannot run jobs there`);
    return { adapter: adapterFor(site.adapter), context: { site: adapterSite(site), credential: harvestCredential(site, env) } };
  };
}
