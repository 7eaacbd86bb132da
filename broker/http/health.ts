/** Liveness and readiness for orchestrators. */
import type { FastifyInstance } from 'fastify';
import { pendingMigrations } from '../../registry/store/migrate.js';
import type { Services } from '../factory.js';

/** /healthz (the process answers) and /readyz (database reachable, migrations current). */
export async function healthRoutes(app: FastifyInstance, { services }: { services: Services }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    try {
      const pending = await pendingMigrations(services.pool);
      if (pending.length > 0) return reply.code(503).send({ status: 'not ready', database: 'reachable', pendingMigrations: pending });
      return { status: 'ready', database: services.databaseKind };
    } catch (err) {
      return reply.code(503).send({ status: 'not ready', database: 'unreachable', error: (err as Error).message });
    }
  });
}
