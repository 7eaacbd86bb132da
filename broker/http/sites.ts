/** REST routes for site operators: publish and read a site's capability document. */
import type { FastifyInstance } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';
import { documentById, documentsBySite } from '../../registry/store/queries/history.js';
import { DOCUMENT_LIMITS } from '../../registry/model/validate.js';
import { parseLargeJsonBodies } from './json-body.js';
import { PUBLISH_KEY_HEADER } from '../auth/rights.js';

/** PUT and GET /sites/:id/capabilities. */
export async function siteRoutes(app: FastifyInstance): Promise<void> {
  // A capability document is JSON; any other media type is refused with 415 here. A large one
  // is parsed while it arrives, in slices.
  app.removeContentTypeParser(['text/plain']);
  parseLargeJsonBodies(app, [{ pointer: '/datasets', max: DOCUMENT_LIMITS.datasets, refuse: tooManyDatasets }]);
  app.put<{ Params: { id: string } }>('/sites/:id/capabilities', {
    // Rights are checked before the body is read: a caller who may not publish sends nothing we parse.
    onRequest: async (request) => {
      const key = request.headers[PUBLISH_KEY_HEADER];
      app.services.rights.checkPublish(request.identity, request.params.id, typeof key === 'string' ? key : undefined);
    },
  }, async (request, reply) => {
    const result = await app.services.publisher.publish(request.params.id, request.body, 'publish');
    return reply.code(200).send(result);
  });

  app.get<{ Params: { id: string } }>('/sites/:id/capabilities', async (request, reply) => {
    const [latest] = await documentsBySite(app.services.pool, request.params.id, 1);
    if (!latest) throw new ConstellationError('NOT_FOUND', `site "${request.params.id}" has advertised no capability document`);
    return reply.header('x-constellation-origin', latest.origin).send(await documentById(app.services.pool, latest.id));
  });
}

/** The validator's refusal of too many datasets, given while the document is still arriving. */
function tooManyDatasets(): ConstellationError {
  const message = `has more than ${DOCUMENT_LIMITS.datasets} datasets; at most ${DOCUMENT_LIMITS.datasets} are accepted per document`;
  return new ConstellationError('INVALID_DOCUMENT', `capability document rejected: 1 violation(s); first: /datasets: ${message}`, {
    violations: [{ path: '/datasets', rule: 'maxItems', message }],
  });
}
