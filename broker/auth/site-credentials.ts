/** The broker's own credential for each site (used by harvests), read from the environment. */
import type { SiteCredential } from '../../registry/model/adapter.js';
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
