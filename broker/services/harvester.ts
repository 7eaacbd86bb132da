/** Running harvests: one site or all, at most `harvest.concurrency` at a time, one per site at once. */
import type pg from 'pg';
import { harvestSite } from '../../registry/harvest.js';
import type { Adapter } from '../../registry/model/adapter.js';
import type { Platform } from '../../registry/model/capability.js';
import { ConstellationError, ErrorCodes } from '../../registry/model/errors.js';
import { closeLapsedHarvestRuns, renewHarvestLeases, type HarvestLease } from '../../registry/store/queries/harvest.js';
import type { HarvestRunRow } from '../../registry/store/queries/rows.js';
import { adapterSite, harvestCredentialFor } from '../auth/site-credentials.js';
import type { TokenIssuer } from '../auth/token-exchange.js';
import type { Config, SiteConfig } from '../config/config.js';
import { deadlineSignal } from '../deadline.js';
import type { Publisher } from './publisher.js';

/**
 * Told of every harvest as it ends (metrics): the site, the recorded outcome (`ERROR` when the
 * run itself could not be recorded) and how long it took. It must not throw.
 */
export type HarvestObserver = (siteId: string, outcome: HarvestRunRow['outcome'] | 'ERROR', durationMs: number) => void;

/** What a Harvester is told besides its pool, config, publisher and adapters. */
export interface HarvesterOptions {
  env?: NodeJS.ProcessEnv;
  /** Called after every recorded run (status and version may have changed). */
  onRecorded?: () => Promise<void>;
  /** The identity provider's client, for sites harvested with client credentials. */
  issuer?: TokenIssuer;
  /** Told of every harvest as it ends. */
  observer?: HarvestObserver;
  /** This broker's id, recorded as the owner of its runs' leases. */
  owner: string;
  /** Told of a lease renewal or a closing of lapsed runs that failed (the harvests go on). */
  onError?: (err: unknown, what: string) => void;
}

/** Harvests sites through their adapters and records every run. */
export class Harvester {
  private readonly sites: Map<string, SiteConfig>;
  private readonly inFlight = new Map<string, Promise<HarvestRunRow>>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  /** Aborted by stop(). */
  private readonly stopping = new AbortController();
  private readonly lease: HarvestLease;
  /** Renews this broker's run leases while any harvest runs (a third of a lease apart). */
  private renewal: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly config: Config,
    private readonly publisher: Publisher,
    private readonly adapterFor: (kind: Platform) => Adapter,
    private readonly options: HarvesterOptions,
  ) {
    this.sites = new Map(config.sites.map((s) => [s.id, s]));
    this.lease = { owner: options.owner, ms: config.harvest.leaseS * 1000 };
  }

  /**
   * Close the runs left RUNNING by a broker that died mid-harvest (their lease lapsed) as
   * FAILED with CONSTELLATION_E_HARVEST_ABANDONED; the sites' health stands. Done at start and
   * before every harvest, by whichever broker comes first. A failure goes to `onError`: the
   * next harvest tries again.
   */
  async closeAbandoned(): Promise<void> {
    await closeLapsedHarvestRuns(this.pool, ErrorCodes.HARVEST_ABANDONED.code,
      'the broker running this harvest stopped without recording its end (killed, or its machine lost); the next harvest runs as scheduled',
    ).catch((err: unknown) => this.options.onError?.(err, 'closing abandoned harvest runs'));
  }

  /**
   * Harvest one configured site now; a harvest already running for it is joined, not repeated.
   * `confirm` applies a harvest the guard would hold; it runs after any harvest in flight.
   */
  harvest(siteId: string, trigger = 'manual', options: { confirm?: boolean } = {}): Promise<HarvestRunRow> {
    if (this.stopping.signal.aborted) return Promise.reject(stoppingError(siteId));
    const site = this.sites.get(siteId);
    if (!site) return Promise.reject(new ConstellationError('UNKNOWN_SITE', `site "${siteId}" is not configured for harvesting in federation "${this.config.federation.name}"`));
    const existing = this.inFlight.get(siteId);
    if (existing && !options.confirm) return existing;
    const confirm = options.confirm === true;
    // A harvest still waiting for a slot when the broker stops is not started.
    const start = () => this.withSlot(() => (this.stopping.signal.aborted ? Promise.reject(stoppingError(siteId)) : this.run(site, trigger, confirm)));
    // A confirmation must not be answered by an unconfirmed run already under way: it follows it.
    const run = (existing ? existing.catch(() => undefined).then(start) : start()).finally(() => {
      if (this.inFlight.get(siteId) === run) this.inFlight.delete(siteId);
    });
    this.inFlight.set(siteId, run);
    return run;
  }

  /** Harvest every configured site whose harvesting is not disabled. */
  harvestAll(trigger = 'manual'): Promise<HarvestRunRow[]> {
    return Promise.all(this.config.sites.filter((s) => s.harvest?.enabled !== false).map((s) => this.harvest(s.id, trigger)));
  }

  /**
   * Stop harvesting: later calls are refused (STOPPING), harvests in flight are cut short and
   * recorded as stopped (not as the site's failure), and this resolves once every one is recorded,
   * so no run is left RUNNING by a broker that stopped cleanly.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight.values()]);
    clearInterval(this.renewal);
    this.renewal = undefined;
  }

  private async run(site: SiteConfig, trigger: string, confirm: boolean): Promise<HarvestRunRow> {
    await this.closeAbandoned();
    this.renewWhileRunning();
    const signal = deadlineSignal(this.config.harvest.timeoutS * 1000, this.stopping.signal);
    const started = performance.now();
    const run = await harvestSite(
      {
        pool: this.pool,
        adapter: this.adapterFor(site.adapter),
        context: { site: adapterSite(site), signal },
        credential: () => harvestCredentialFor(site, this.options.env ?? process.env, this.options.issuer),
        publish: (doc) => this.publisher.publish(site.id, withConfiguredSite(doc, site), 'harvest'),
        maxRemovedShare: this.config.harvest.maxRemovedShare,
        confirm,
        stopping: this.stopping.signal,
        lease: this.lease,
      },
      trigger,
    ).catch((err: unknown) => {
      this.options.observer?.(site.id, 'ERROR', performance.now() - started);
      throw err;
    });
    this.options.observer?.(site.id, run.outcome, performance.now() - started);
    await this.options.onRecorded?.();
    return run;
  }

  /** Keep this broker's run leases renewed until no harvest of it is in flight. */
  private renewWhileRunning(): void {
    if (this.renewal !== undefined) return;
    this.renewal = setInterval(() => {
      if (this.inFlight.size === 0 && this.running === 0) {
        clearInterval(this.renewal);
        this.renewal = undefined;
        return;
      }
      renewHarvestLeases(this.pool, this.lease).catch((err: unknown) => this.options.onError?.(err, 'renewing harvest leases'));
    }, Math.max(50, this.lease.ms / 3));
    this.renewal.unref();
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.config.harvest.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

function stoppingError(siteId: string): ConstellationError {
  return new ConstellationError('STOPPING', `the broker is stopping: the harvest of site "${siteId}" was not started`);
}

/** The federation's own facts about a site (id, name, location) win over what a harvest reports. */
function withConfiguredSite<T extends { site: { id: string; name: string; location?: { lat: number; lon: number } } }>(doc: T, site: SiteConfig): T {
  return { ...doc, site: { ...doc.site, id: site.id, name: site.name, ...(site.location ? { location: site.location } : {}) } };
}
