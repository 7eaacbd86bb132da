/** Liveness and readiness for orchestrators and for a person waiting on a start. */
import type { FastifyInstance } from 'fastify';
import { pendingMigrations } from '../../registry/store/migrate.js';
import type { StartPhases } from '../start-phases.js';

/**
 * /healthz: the process answers. /readyz: 503 with every start phase (its state and time)
 * until the start is done, then 200 while the database is reachable and migrations current.
 */
export async function healthRoutes(app: FastifyInstance, { phases }: { phases: StartPhases }): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (!phases.ready) {
      return reply.code(503).header('retry-after', '1').send({
        status: phases.failed ? 'failed' : 'starting',
        ...(phases.failed ? {} : { waitingFor: phases.current() }),
        elapsedMs: phases.elapsedMs(),
        phases: phases.report(),
      });
    }
    const { pool, databaseKind, config } = app.services;
    try {
      const pending = await pendingMigrations(pool);
      if (pending.length > 0) return reply.code(503).send({ status: 'not ready', database: 'reachable', pendingMigrations: pending });
      return { status: 'ready', federation: config.federation.name, database: databaseKind, phases: phases.report() };
    } catch (err) {
      return reply.code(503).send({ status: 'not ready', database: 'unreachable', error: (err as Error).message });
    }
  });
}
