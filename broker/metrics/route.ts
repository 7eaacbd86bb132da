/** GET /metrics: the Prometheus text exposition, for those `access` lets in (see access.ts). */
import type { FastifyInstance } from 'fastify';
import { isConstellationError } from '../../registry/model/errors.js';
import type { IdentityServices } from '../auth/identity-services.js';
import { checkScrape, type MetricsAccess } from './access.js';
import type { BrokerMetrics } from './metrics.js';

/** What the route needs. */
export interface MetricsRouteOptions {
  metrics: BrokerMetrics;
  access: MetricsAccess;
  /** The identity services once started (undefined while starting, or without an identity provider). */
  identity: () => IdentityServices | undefined;
}

/** Register GET /metrics. */
export async function metricsRoutes(app: FastifyInstance, { metrics, access, identity }: MetricsRouteOptions): Promise<void> {
  app.get('/metrics', async (request, reply) => {
    try {
      await checkScrape(request, access, identity());
    } catch (err) {
      if (!isConstellationError(err)) throw err;
      request.log.info({ code: err.code, remoteAddress: request.ip }, '/metrics scrape refused');
      if (err.kind === 'UNAUTHENTICATED') reply.header('www-authenticate', 'Bearer realm="constellation-metrics"');
      return reply.code(err.statusCode).send(err.toJSON());
    }
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
