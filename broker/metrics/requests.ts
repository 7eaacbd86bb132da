/** Request latency: every HTTP answer by route pattern, and GraphQL operations by type and name. */
import type { FastifyInstance } from 'fastify';
import type { BrokerMetrics } from './metrics.js';

/** Count every answered request into `metrics` (the route label is fastify's route pattern: no ids, no query strings). */
export function measureRequests(app: FastifyInstance, metrics: BrokerMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    const route = request.routeOptions.url;
    metrics.httpRequest(request.method, route, reply.statusCode, seconds);
    // The guard's analysis names the operation; a request it refused (or never parsed) ran none.
    const operation = route === '/graphql' ? request.graphqlOperation : undefined;
    if (operation?.operation) metrics.graphqlOperation(operation.operation, operation.name, seconds);
    done();
  });
}
