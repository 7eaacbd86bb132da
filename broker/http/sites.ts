/** REST routes for site operators: publish and read a site's capability document. */
import type { FastifyInstance } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';
import { documentById, documentsBySite } from '../../registry/store/queries/history.js';
import { parseLargeJsonBodies } from './json-body.js';

/** PUT and GET /sites/:id/capabilities. */
export async function siteRoutes(app: FastifyInstance): Promise<void> {
  // A capability document is JSON; any other media type is refused with 415 here. A large one
  // is parsed while it arrives, in slices.
  app.removeContentTypeParser(['text/plain']);
  parseLargeJsonBodies(app);
  app.put<{ Params: { id: string } }>('/sites/:id/capabilities', async (request, reply) => {
    const result = await app.services.publisher.publish(request.params.id, request.body, 'publish');
    return reply.code(200).send(result);
  });

  app.get<{ Params: { id: string } }>('/sites/:id/capabilities', async (request, reply) => {
    const [latest] = await documentsBySite(app.services.pool, request.params.id, 1);
    if (!latest) throw new ConstellationError('NOT_FOUND', `site "${request.params.id}" has advertised no capability document`);
    return reply.header('x-constellation-origin', latest.origin).send(await documentById(app.services.pool, latest.id));
  });
}
