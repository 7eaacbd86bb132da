/** GET /threads/:threadId/provenance — a thread's provenance as JSON, or W3C PROV-JSON with ?format=prov-json; its owner's only. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';
import { provJson } from './provenance.js';

/** Register the provenance route on `app` (over the app's thread service once started); anyone but the owner gets NOT_FOUND. */
export function registerThreadProvenanceRoute(app: FastifyInstance, ownerOfRequest: (request: FastifyRequest) => string): void {
  app.get<{ Params: { threadId: string }; Querystring: { format?: string } }>('/threads/:threadId/provenance', async (request, reply) => {
    const format = request.query.format ?? 'json';
    if (format !== 'json' && format !== 'prov-json') throw new ConstellationError('INVALID_ARGUMENT', `format must be json or prov-json, not "${format}"`);
    const provenance = await app.services.threads.provenance(request.params.threadId, ownerOfRequest(request));
    reply.header('cache-control', 'private, no-store');
    if (format === 'json') return reply.type('application/json').send(provenance);
    return reply.type('application/json').send(provJson(provenance));
  });
}
