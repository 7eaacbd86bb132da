/** The broker's own credential for each site (used by harvests), read from the environment. */
import type { AdapterSite, SiteCredential } from '../../registry/model/adapter.js';
import type { SiteConfig } from '../config/config.js';

/**
 * The credential named by `credentials.env`: sent in `credentials.header` when the site
 * uses its own header (X-Auth-Token, X-DL-AuthToken), else as a bearer token. Anonymous when
 * the strategy is anonymous or the variable is unset.
 */
export function harvestCredential(site: SiteConfig, env: NodeJS.ProcessEnv = process.env): SiteCredential {
  const value = site.credentials.env ? env[site.credentials.env] : undefined;
  if (site.credentials.strategy === 'anonymous' || !value) return { kind: 'anonymous' };
  if (site.credentials.header) return { kind: 'header', name: site.credentials.header, value };
  return { kind: 'bearer', token: value };
}

/** What an adapter is told about a configured site. */
export function adapterSite(site: SiteConfig): AdapterSite {
  return { id: site.id, name: site.name, platform: site.adapter, url: site.url, options: site.options };
}
