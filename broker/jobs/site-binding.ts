/** How the job service reaches the site a job runs at: the adapter, and the context (site, the submitter's credential) to call it with. */
import type pg from 'pg';
import type { Adapter, AdapterContext } from '../../registry/model/adapter.js';

/** How to talk to one site: its adapter and the context (site, credential) to call it with. */
export interface SiteBinding {
  adapter: Adapter;
  context: AdapterContext;
  /** What the submitter does when the site refuses the credential (401/403), added to the job's error. */
  authAdvice?: string;
}

/** The job a site is wanted for: its credentials at the site are its submitter's, kept in `db`. */
export interface JobScope {
  id: string;
  owner: string;
  db: pg.Pool;
}

/** Finds the adapter and context for a site id, for one job; throws UNKNOWN_SITE when there is none. */
export type SiteResolver = (siteId: string, job: JobScope) => SiteBinding | Promise<SiteBinding>;
