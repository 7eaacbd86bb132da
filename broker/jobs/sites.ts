/** Which adapter and credential run a job at a site: the sites federation.yaml declares. */
import type { Adapter, SiteCredential } from '../../registry/model/adapter.js';
import type { Platform } from '../../registry/model/capability.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { SecretKeys } from '../auth/secret-keys.js';
import { adapterSite, harvestCredential, needsUserCredential, refusedCredentialAdvice } from '../auth/site-credentials.js';
import type { Config, SiteConfig } from '../config/config.js';
import { keptJobCredential } from './job-credentials.js';
import type { JobScope, SiteResolver } from './site-binding.js';

/** The credential a job calls a configured site with. */
export type JobCredentialSource = (site: SiteConfig, job: JobScope) => Promise<SiteCredential>;

/**
 * With an identity provider, a job calls a site that needs a credential with its submitter's
 * own, kept sealed with the job at submit; when none was kept the call fails (UPSTREAM_AUTH)
 * rather than use the broker's or anyone else's. Without one the federation is single-tenant
 * and jobs use the site's configured credential (credentials.env), as before identity existed.
 */
export function jobCredentials(config: Config, env: NodeJS.ProcessEnv = process.env): JobCredentialSource {
  // The same keys the identity services read: CONSTELLATION_SECRET_KEY from the same environment.
  const keys = config.identity ? SecretKeys.fromEnv(env) : undefined;
  return async (site, job) => {
    if (!config.identity || !needsUserCredential(site)) return harvestCredential(site, env);
    const kept = await keptJobCredential(job.db, keys, job.id, site.id);
    if (kept) return kept;
    throw new ConstellationError('UPSTREAM_AUTH', `no credential of the job's submitter for site ${site.id} was kept with job ${job.id} (the key that sealed it is gone, the token was unlinked, or the broker stopped while submitting); ${refusedCredentialAdvice(site)}`);
  };
}

/** The configured site `siteId`, or UNKNOWN_SITE. */
export function configuredSite(config: Config, siteId: string): SiteConfig {
  const site = config.sites.find((s) => s.id === siteId);
  if (!site) throw new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not configured in federation "${config.federation.name}", so the broker cannot run jobs there`);
  return site;
}

/**
 * A resolver over the configured sites, each called with the job's credential (jobCredentials).
 * A site only published (not configured) has no adapter settings, so jobs cannot go there.
 */
export function configuredSites(config: Config, adapterFor: (kind: Platform) => Adapter, env: NodeJS.ProcessEnv = process.env): SiteResolver {
  const credentialFor = jobCredentials(config, env);
  return async (siteId, job) => {
    const site = configuredSite(config, siteId);
    return {
      adapter: adapterFor(site.adapter),
      context: { site: adapterSite(site), credential: await credentialFor(site, job) },
      ...(config.identity ? { authAdvice: refusedCredentialAdvice(site) } : {}),
    };
  };
}
