/**
 * Metrics and request logging, wired into a broker app: request ids and their log context,
 * request latency, and GET /metrics. Services report harvests and upstream calls through
 * `observers` (adapters/ never imports prom-client: it is handed a plain observer function).
 */
import type { FastifyInstance } from 'fastify';
import type { UpstreamObserver } from '../../adapters/http.js';
import type { IdentityServices } from '../auth/identity-services.js';
import type { HarvestObserver } from '../services/harvester.js';
import { metricsAccessFrom } from './access.js';
import { carryRequestIds } from './log-context.js';
import { BrokerMetrics, type MetricSources } from './metrics.js';
import { measureRequests } from './requests.js';
import { metricsRoutes } from './route.js';
import { upstreamObserver } from './upstream.js';

export { requestLogMixin } from './log-context.js';
export { requestIdOptions } from './request-id.js';
export { BrokerMetrics } from './metrics.js';
export { measureSubscriptions } from './subscriptions.js';

/** What services report to the metrics. */
export interface ServiceObservers {
  upstream: UpstreamObserver;
  harvest: HarvestObserver;
}

/** The broker's metrics once instrumented: hand `observers` to the services and `readFrom` them once started. */
export interface Instrumented {
  metrics: BrokerMetrics;
  observers: ServiceObservers;
  /** Point the scrape-time gauges at the started services. */
  readFrom(sources: () => MetricSources | undefined): void;
}

/**
 * Instrument `app`: call right after creating it, before any route or plugin, so its hooks see
 * every request. `env` holds the /metrics access settings (INVALID_CONFIG when they are wrong).
 */
export async function instrument(app: FastifyInstance, options: { env: NodeJS.ProcessEnv; identity: () => IdentityServices | undefined }): Promise<Instrumented> {
  const access = metricsAccessFrom(options.env);
  const metrics = new BrokerMetrics();
  carryRequestIds(app);
  measureRequests(app, metrics);
  await app.register(metricsRoutes, { metrics, access, identity: options.identity });
  return {
    metrics,
    observers: {
      upstream: upstreamObserver(metrics, app.log),
      harvest: (siteId, outcome, durationMs) => metrics.harvest(siteId, outcome, durationMs),
    },
    readFrom: (sources) => metrics.readFrom(sources, (err) => app.log.warn({ err }, 'metrics: counting jobs failed; constellation_jobs is left out of this scrape')),
  };
}
