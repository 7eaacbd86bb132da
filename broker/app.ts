/** buildApp(config) → a ready fastify instance serving GraphQL and REST (it never listens). */
import { readFile } from 'node:fs/promises';
import { GraphQLError } from 'graphql';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import mercurius, { type MercuriusOptions } from 'mercurius';
import { isConstellationError } from '../registry/model/errors.js';
import { packagePath } from '../registry/paths.js';
import type { HttpClient } from '../adapters/http.js';
import { startScheduler } from './scheduler/scheduler.js';
import { migrate } from '../registry/store/migrate.js';
import type { Config } from './config/config.js';
import { openDatabase, type Database } from './db/database.js';
import { createServices, type Services } from './factory.js';
import type { GraphQLContext } from './graphql/context.js';
import { jobTopic } from './graphql/job-resolvers.js';
import { loaders } from './graphql/loaders.js';
import { followJobs } from './jobs/feed.js';
import { registerJobResultRoutes } from './jobs/routes.js';
import type { JobServiceOptions } from './jobs/service.js';
import { ReadScope } from './graphql/read-scope.js';
import { resolvers } from './graphql/resolvers.js';
import { ResponseCache } from './graphql/response-cache.js';
import { toConstellationError } from './http/errors.js';
import { healthRoutes } from './http/health.js';
import { siteRoutes } from './http/sites.js';
import { registerConfiguredSites } from './services/seeds.js';

declare module 'fastify' {
  interface FastifyRequest {
    responseCacheKey?: string;
  }
  interface FastifyInstance {
    services: Services;
  }
}

/** Deepest GraphQL selection accepted: deep enough for real queries, shallow enough to stop abuse. */
export const MAX_QUERY_DEPTH = 12;

/** How often the coverage index looks for registry changes made by other broker processes. */
const COVERAGE_POLL_MS = 2_000;

export interface BuildOptions {
  /** An already open database (tests share one); otherwise the app opens and owns one. */
  database?: Database;
  /** Skip migrations and seeds (the caller did them). */
  prepared?: boolean;
  logger?: boolean;
  /** Run the harvest schedules of federation.yaml in this process (serve does). */
  schedule?: boolean;
  /** HTTP client for talking to sites (tests shorten its timeouts). */
  http?: HttpClient;
  /** Job polling settings (tests poll faster). */
  jobs?: JobServiceOptions;
  /** Where site credentials are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Open (or take) the database, migrate, register configured sites, and build the server. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const database = options.database ?? (await openDatabase(config.database));
  const owned = options.database === undefined;
  try {
    const app = Fastify({
      logger: options.logger === false ? false : { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie'] },
      bodyLimit: config.bodyLimit,
    });
    const services = createServices(config, database.pool, database.kind, {
      http: options.http,
      env: options.env,
      jobs: { onError: (err) => app.log.error({ err }, 'job polling failed'), ...options.jobs },
    });
    if (!options.prepared) {
      await migrate(database.pool);
      await registerConfiguredSites(database.pool, config, services.publisher);
    }
    app.decorate('services', services);
    await services.coverage.refresh(database.pool);
    await services.planner.refresh(database.pool);
    const stopFollowing = services.coverage.follow(database.pool, COVERAGE_POLL_MS);
    const stopPlanner = services.planner.follow(database.pool, COVERAGE_POLL_MS);
    const scheduler = options.schedule ? startScheduler(config, services.harvester, database.pool, (err) => app.log.error({ err }, 'scheduled harvest failed')) : undefined;
    let stopFeed: (() => Promise<void>) | undefined;
    app.addHook('onClose', async () => {
      scheduler?.stop();
      await stopFeed?.();
      await services.jobs.stop();
      stopFollowing();
      stopPlanner();
      if (!options.http) await services.http.close();
      if (owned) await database.close();
    });

    app.setErrorHandler((err, request, reply) => {
      const e = toConstellationError(err);
      if (e.statusCode >= 500) request.log.error({ err }, e.message);
      return reply.code(e.statusCode).send(e.toJSON());
    });
    app.setNotFoundHandler((request, reply) =>
      reply.code(404).send({ code: 'CONSTELLATION_E_NOT_FOUND', message: `no route ${request.method} ${request.url}` }),
    );
    if (config.responseCacheBytes > 0) cacheGraphQLResponses(app, new ResponseCache(config.responseCacheBytes), services);

    await app.register(mercurius as unknown as FastifyPluginAsync<MercuriusOptions>, {
      schema: await readFile(packagePath('schema.graphql'), 'utf8'),
      resolvers,
      loaders,
      graphiql: true,
      // Subscriptions read jobs through the pool: a socket lives too long for a request's read transaction.
      subscription: { context: () => ({ services }) },
      jit: 1,
      cache: 1024,
      queryDepth: MAX_QUERY_DEPTH,
      context: (request, reply): GraphQLContext => {
        const db = new ReadScope(services.pool);
        // 'close' fires both when the response is sent and when the client goes away mid-request.
        reply.raw.once('close', () => void db.close());
        return { db, services };
      },
      errorFormatter: (execution, ctx) => {
        const formatted = mercurius.defaultErrorFormatter(execution, ctx);
        // Our own errors keep their stable code and violations; GraphQL's own (syntax,
        // validation, depth) keep mercurius' messages.
        const errors = (execution.errors ?? []).flatMap((error) => {
          const original = (error as { originalError?: unknown }).originalError;
          if (!isConstellationError(original) && !isBug(original)) return mercurius.defaultErrorFormatter({ ...execution, errors: [error] }, ctx).response.errors ?? [];
          // A bug's message may leak internals: callers get the stable INTERNAL code, the log gets the cause.
          if (isBug(original)) ctx.reply.log.error({ err: original }, 'resolver failed');
          const { code, violations } = toConstellationError(original).toJSON();
          return [{ ...error.toJSON(), message: isBug(original) ? 'internal error' : (original as Error).message, extensions: { ...(error.extensions ?? {}), code, ...(violations ? { violations } : {}) } }];
        });
        return { statusCode: formatted.statusCode, response: { ...formatted.response, errors } };
      },
    });
    await app.register(siteRoutes, { services });
    await app.register(healthRoutes, { services });
    registerJobResultRoutes(app, services.jobs);
    await app.ready();
    // On the embedded database other processes only join this one's server, so every job
    // change is made here; PostgreSQL may be shared by several brokers, whose changes arrive by NOTIFY.
    stopFeed = followJobs(services.jobs, database.pool, (job) => void app.graphql.pubsub.publish({ topic: jobTopic(job.id), payload: { jobUpdated: job } }), {
      listen: database.kind === 'postgresql',
      onError: (err) => app.log.error({ err }, 'job feed failed'),
    });
    await services.jobs.start();
    return app;
  } catch (err) {
    if (owned) await database.close();
    throw err;
  }
}

/** An error thrown by our own code that is neither ours by design nor GraphQL's or mercurius'. */
function isBug(err: unknown): boolean {
  if (!(err instanceof Error) || isConstellationError(err) || err instanceof GraphQLError) return false;
  return !String((err as { code?: unknown }).code ?? '').startsWith('MER_ERR');
}

/** Serve repeated read-only GraphQL queries from the response cache of the current registry version. */
function cacheGraphQLResponses(app: FastifyInstance, cache: ResponseCache, services: Services): void {
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.url !== '/graphql') return;
    const key = cache.key(services.coverage.version, request.body);
    if (!key) return;
    const hit = cache.get(key);
    if (hit !== undefined) return reply.header('content-type', 'application/json; charset=utf-8').header('x-constellation-cache', 'hit').send(hit);
    request.responseCacheKey = key;
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.responseCacheKey && reply.statusCode === 200 && typeof payload === 'string' && payload.startsWith('{"data"') && !payload.includes('"errors":[')) {
      cache.set(request.responseCacheKey, payload);
    }
    return payload;
  });
}
