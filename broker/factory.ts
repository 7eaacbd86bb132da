/** Building the broker's services once, from a config and an open database. */
import { join } from 'node:path';
import type pg from 'pg';
import { createAdapters } from '../adapters/index.js';
import { HttpClient } from '../adapters/http.js';
import type { Adapter } from '../registry/model/adapter.js';
import type { Platform } from '../registry/model/capability.js';
import type { IdentityServices } from './auth/identity-services.js';
import { Rights } from './auth/rights.js';
import type { Config } from './config/config.js';
import { JobService, type JobServiceOptions } from './jobs/service.js';
import { ThreadService, type ThreadTimings } from './threads/service.js';
import { configuredSite, configuredSites, jobCredentials } from './jobs/sites.js';
import { Stager } from './staging/stage-result.js';
import { PlannerView } from './planner/index.js';
import { CatalogueView } from './services/catalogue-view.js';
import { CoverageView } from './services/coverage-view.js';
import { Harvester, type HarvestObserver } from './services/harvester.js';
import { Publisher } from './services/publisher.js';

/** Everything handlers need, built once per broker process. */
export interface Services {
  config: Config;
  pool: pg.Pool;
  databaseKind: 'postgresql' | 'embedded';
  publisher: Publisher;
  /** The sky-coverage index; follows `planner`, never loaded on its own. */
  coverage: CoverageView;
  /** The discovery catalogue (text, UCD, site and visibility filters); follows `planner` like `coverage`. */
  catalogue: CatalogueView;
  harvester: Harvester;
  http: HttpClient;
  /** The registry's in-memory view (the planner's snapshot); refreshing it refreshes `coverage` too. */
  planner: PlannerView;
  jobs: JobService;
  /** Cross-match threads: planned, recorded and run as jobs (issue 11). */
  threads: ThreadService;
  /** Writes completed jobs' results into their owners' space at a site (stageTo). */
  stager: Stager;
  /** Who may publish and harvest. */
  rights: Rights;
  /** Token verification, sessions and keys; absent when federation.yaml names no identity provider. */
  identity?: IdentityServices;
}

/** Wire the services over `pool`; `http` and `jobs` settings given here override the config's (tests shorten them). */
export function createServices(
  config: Config,
  pool: pg.Pool,
  databaseKind: Services['databaseKind'],
  options: { http?: HttpClient; adapterFor?: (kind: Platform) => Adapter; env?: NodeJS.ProcessEnv; jobs?: JobServiceOptions; identity?: IdentityServices; threads?: ThreadTimings; harvestObserver?: HarvestObserver; onHarvestError?: (err: unknown, what: string) => void } = {},
): Services {
  const coverage = new CoverageView();
  const catalogue = new CatalogueView();
  const preferences = new Map(config.sites.map((s) => [s.id, s.preference ?? 1]));
  // One view of the registry: the planner's snapshot, with the coverage index and the catalogue following it.
  const planner = new PlannerView((id) => preferences.get(id) ?? 1, coverage, catalogue);
  // Registry views follow every change this process makes before the change is acknowledged.
  const refreshViews = async () => {
    await planner.refresh(pool);
  };
  // A publish knows the version it committed and what it stored: a view one version behind takes
  // it as published, reading nothing back; otherwise the refresh need not ask whether one moved.
  const publisher = new Publisher(pool, config, async (_result, site) => {
    await planner.published(pool, site);
  });
  const http = options.http ?? new HttpClient({ bodyTimeoutMs: config.harvest.timeoutS * 1000, limits: config.limits });
  const allowHosts = new Map(config.sites.map((s) => [s.id, s.allowHosts]));
  const adapterFor = options.adapterFor ?? createAdapters(http, { allowHosts: (id) => allowHosts.get(id) });
  const jobs = new JobService(pool, configuredSites(config, adapterFor, options.env), {
    pollIntervalMs: config.jobs.pollIntervalS * 1000,
    leaseMs: config.jobs.leaseS * 1000,
    requestTimeoutMs: config.jobs.requestTimeoutS * 1000,
    submitTimeoutMs: config.jobs.submitTimeoutS * 1000,
    resultMaxBytes: config.results.maxBytes,
    resultRetentionMs: config.results.retentionDays * 86_400_000,
    resultFirstByteMs: config.results.firstByteTimeoutS * 1000,
    ...(config.jobs.giveUpAfterS ? { giveUpAfterMs: config.jobs.giveUpAfterS * 1000 } : {}),
    ...options.jobs,
  });
  // Harvest runs are leased under the same broker id as jobs.
  const harvester = new Harvester(pool, config, publisher, adapterFor, {
    env: options.env, onRecorded: refreshViews, issuer: options.identity?.provider, observer: options.harvestObserver, owner: jobs.brokerId,
    ...(options.onHarvestError ? { onError: options.onHarvestError } : {}),
  });
  const rights = new Rights(config, options.env ?? process.env);
  // Staging runs with the job owner's own credential for the target site, kept with the job at submit.
  const credentialFor = jobCredentials(config, options.env);
  const stager = new Stager({
    pool, http, jobs, sites: config.sites, maxBytes: config.results.maxBytes,
    credentialFor: (job, siteId) => credentialFor(configuredSite(config, siteId), { id: job.id, owner: job.owner, db: pool }),
  });
  const threads = new ThreadService(pool, jobs, () => planner.snapshot, { config, issuer: options.identity?.provider, keys: options.identity?.keys }, {
    maxParallel: config.crossmatch.maxParallelPerSite,
    memoryMb: config.crossmatch.memoryMb,
    leaseMs: config.crossmatch.leaseS * 1000,
    sweepMs: config.crossmatch.sweepS * 1000,
    resultDir: join(config.database.dataDir, 'results', 'threads'),
    ...(options.jobs?.onError ? { onError: options.jobs.onError } : {}),
    ...options.threads,
  });
  return { config, pool, databaseKind, publisher, coverage, catalogue, harvester, http, planner, jobs, threads, rights, stager, ...(options.identity ? { identity: options.identity } : {}) };
}
