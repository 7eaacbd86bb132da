/**
 * The broker's Prometheus metrics: one registry per broker app (tests run several brokers in one
 * process, and the global default registry would mix them), plus the process-wide Node.js
 * metrics collected once per process. Values that live elsewhere (jobs in the database, the
 * pool, the planner snapshot) are read at scrape time, not kept in step.
 */
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { UpstreamCall } from '../../adapters/http.js';
import type { PlannerView } from '../planner/index.js';
import { BoundedNames, errorCodeLabel, methodLabel, statusClass } from './labels.js';

/** Distinct GraphQL operation names kept as labels; later names count as `other`. */
export const MAX_OPERATION_NAMES = 100;

/** Distinct site ids kept as labels (configured sites are far fewer; open registration may add more). */
export const MAX_SITES = 500;

/** What the scrape-time gauges read; undefined while the broker is starting. */
export interface MetricSources {
  pool: pg.Pool;
  databaseKind: 'postgresql' | 'embedded';
  planner: PlannerView;
}

/** Latency buckets (seconds) of requests answered by the broker. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Latency buckets (seconds) of exchanges with sites, which are slower and more spread. */
const UPSTREAM_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Lifetimes (seconds) of GraphQL subscriptions: a job followed to its end takes seconds to hours. */
const SUBSCRIPTION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];
/** Harvest durations (seconds): a VOSI harvest reads several documents. */
const HARVEST_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

let processRegistry: Registry | undefined;

/** Node.js process metrics (CPU, memory, event loop lag, GC), collected once per process whatever the number of brokers. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** One broker's metrics and the calls that feed them. */
export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly operationNames = new BoundedNames(MAX_OPERATION_NAMES);
  private readonly siteNames = new BoundedNames(MAX_SITES, /^[a-z0-9][a-z0-9-]{0,62}$/);
  private sources: () => MetricSources | undefined = () => undefined;
  private collectFailed: (err: unknown) => void = () => {};
  /** A scrape under way: concurrent scrapes share it (one database query however many scrapers). */
  private rendering: Promise<string> | undefined;

  private readonly http = new Histogram({
    name: 'constellation_http_request_duration_seconds',
    help: 'HTTP requests answered by the broker, by method, route pattern (never the raw URL) and status class',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });

  private readonly graphql = new Histogram({
    name: 'constellation_graphql_operation_duration_seconds',
    help: `GraphQL queries and mutations over HTTP, by operation type and name (unnamed: anonymous; after ${MAX_OPERATION_NAMES} distinct names: other); subscriptions, which live on a WebSocket for as long as they follow something, are counted by constellation_graphql_subscriptions_started_total, constellation_graphql_subscriptions_active and constellation_graphql_subscription_duration_seconds`,
    labelNames: ['operation_type', 'operation_name'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });

  private readonly subscriptionsStarted = new Counter({
    name: 'constellation_graphql_subscriptions_started_total',
    help: 'GraphQL subscriptions started over the WebSocket (past the guard and their resolver\'s checks), by operation name (as for constellation_graphql_operation_duration_seconds)',
    labelNames: ['operation_name'] as const,
    registers: [this.registry],
  });

  private readonly subscriptionsActive = new Gauge({
    name: 'constellation_graphql_subscriptions_active',
    help: 'GraphQL subscriptions open now, by operation name',
    labelNames: ['operation_name'] as const,
    registers: [this.registry],
  });

  private readonly subscriptionDuration = new Histogram({
    name: 'constellation_graphql_subscription_duration_seconds',
    help: 'How long GraphQL subscriptions lived, observed when each ends (its stream ends, the client stops it, or its connection closes), by operation name',
    labelNames: ['operation_name'] as const,
    buckets: SUBSCRIPTION_BUCKETS,
    registers: [this.registry],
  });

  private readonly harvests = new Counter({
    name: 'constellation_harvests_total',
    help: 'Harvests ended, by site and outcome (OK, NOT_MODIFIED, RESTORED, HELD, FAILED, INVALID; ERROR: the run could not be recorded)',
    labelNames: ['site', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly harvestDuration = new Histogram({
    name: 'constellation_harvest_duration_seconds',
    help: 'How long harvests took, by site',
    labelNames: ['site'] as const,
    buckets: HARVEST_BUCKETS,
    registers: [this.registry],
  });

  private readonly upstream = new Histogram({
    name: 'constellation_upstream_request_duration_seconds',
    help: 'Exchanges with sites, from sending to the answer\'s headers (each attempt and redirect counts), by site',
    labelNames: ['site'] as const,
    buckets: UPSTREAM_BUCKETS,
    registers: [this.registry],
  });

  private readonly upstreamErrors = new Counter({
    name: 'constellation_upstream_errors_total',
    help: 'Failed exchanges with sites, by site and error code (refusals by the outbound policy and failures while reading a body included)',
    labelNames: ['site', 'code'] as const,
    registers: [this.registry],
  });

  constructor() {
    const registry = this.registry;
    const metrics = this;
    // Read at scrape time from the database, in one grouped query.
    new Gauge({
      name: 'constellation_jobs',
      help: 'Jobs in the database, by state and site (site "none": not placed yet)',
      labelNames: ['state', 'site'] as const,
      registers: [registry],
      collect: async function () {
        const sources = metrics.sources();
        this.reset();
        if (!sources) return;
        let rows: { state: string; site: string | null; n: number }[];
        try {
          ({ rows } = await sources.pool.query<{ state: string; site: string | null; n: number }>(
            'SELECT state, site_id AS site, count(*)::int AS n FROM jobs GROUP BY state, site_id',
          ));
        } catch (err) {
          // The rest of the scrape still answers; the gauge is absent until the database answers again.
          metrics.collectFailed(err);
          return;
        }
        for (const row of rows) this.set({ state: row.state, site: row.site === null ? 'none' : metrics.siteNames.label(row.site) }, row.n);
      },
    });
    const poolGauge = (name: string, help: string, read: (pool: pg.Pool) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['backend'] as const,
        registers: [registry],
        collect() {
          const sources = metrics.sources();
          this.reset();
          if (sources) this.set({ backend: sources.databaseKind }, read(sources.pool));
        },
      });
    poolGauge('constellation_db_pool_connections', 'Connections the broker\'s database pool holds (embedded: to the PGlite socket server)', (p) => p.totalCount);
    poolGauge('constellation_db_pool_idle_connections', 'Pool connections not in use', (p) => p.idleCount);
    poolGauge('constellation_db_pool_waiting_clients', 'Queries waiting for a pool connection', (p) => p.waitingCount);
    poolGauge('constellation_db_pool_max_connections', 'Largest number of connections the pool opens', (p) => (p as pg.Pool & { options: { max?: number } }).options.max ?? 10);
    const plannerGauge = (name: string, help: string, read: (planner: PlannerView) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          const planner = metrics.sources()?.planner;
          const value = planner ? read(planner) : undefined;
          if (value === undefined) this.reset();
          else this.set(value);
        },
      });
    plannerGauge('constellation_planner_snapshot_version', 'Registry version the planner snapshot reflects', (p) => (p.version < 0 ? undefined : p.version));
    plannerGauge('constellation_planner_snapshot_build_seconds', 'How long the last planner snapshot took to read and build', (p) => (p.lastBuild ? p.lastBuild.durationMs / 1000 : undefined));
    plannerGauge('constellation_planner_snapshot_built_timestamp_seconds', 'When the last planner snapshot was made current (Unix time)', (p) => (p.lastBuild ? p.lastBuild.at.getTime() / 1000 : undefined));
  }

  /** Where the scrape-time gauges read from (the services, once started), and who hears of a failed read. */
  readFrom(sources: () => MetricSources | undefined, collectFailed: (err: unknown) => void): void {
    this.sources = sources;
    this.collectFailed = collectFailed;
  }

  /** One HTTP request answered; `route` is the route pattern, undefined when no route matched. */
  httpRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    this.http.observe({ method: methodLabel(method), route: route ?? '(unmatched)', status_class: statusClass(status) }, seconds);
  }

  /** One GraphQL operation answered over HTTP. */
  graphqlOperation(type: string, name: string | undefined, seconds: number): void {
    this.graphql.observe({ operation_type: type, operation_name: name === undefined ? 'anonymous' : this.operationNames.label(name) }, seconds);
  }

  /** One GraphQL subscription started; call what this returns when it ends (later calls do nothing). */
  graphqlSubscription(name: string | undefined): () => void {
    const labels = { operation_name: name === undefined ? 'anonymous' : this.operationNames.label(name) };
    const started = performance.now();
    this.subscriptionsStarted.inc(labels);
    this.subscriptionsActive.inc(labels);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.subscriptionsActive.dec(labels);
      this.subscriptionDuration.observe(labels, (performance.now() - started) / 1000);
    };
  }

  /** One harvest ended. */
  harvest(siteId: string, outcome: string, durationMs: number): void {
    const site = this.siteNames.label(siteId);
    this.harvests.inc({ site, outcome });
    this.harvestDuration.observe({ site }, durationMs / 1000);
  }

  /** One exchange with a site (see UpstreamCall): its latency when it was sent, its error when it failed. */
  upstreamCall(call: UpstreamCall): void {
    const site = call.siteId === undefined ? 'unscoped' : this.siteNames.label(call.siteId);
    if (call.phase === 'request' && (call.status !== undefined || call.durationMs > 0)) this.upstream.observe({ site }, call.durationMs / 1000);
    if (call.errorCode !== undefined) this.upstreamErrors.inc({ site, code: errorCodeLabel(call.errorCode) });
  }

  /** The Prometheus text exposition: the process's metrics, then the broker's. */
  render(): Promise<string> {
    this.rendering ??= (async () => {
      try {
        return `${await processMetrics().metrics()}\n${await this.registry.metrics()}`;
      } finally {
        this.rendering = undefined;
      }
    })();
    return this.rendering;
  }

  /** The content type of `render()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
