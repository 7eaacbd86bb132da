/** The broker's server: createBroker registers every route at once and starts the services in timed phases; buildApp does both. */
import { readFile } from 'node:fs/promises';
import { GraphQLError } from 'graphql';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import mercurius, { type MercuriusOptions } from 'mercurius';
import { ConstellationError, ErrorCodes, isConstellationError } from '../registry/model/errors.js';
import { packagePath } from '../registry/paths.js';
import type { HttpClient } from '../adapters/http.js';
import { startScheduler } from './scheduler/scheduler.js';
import { migrate } from '../registry/store/migrate.js';
import { onConnectionLost } from '../registry/store/db.js';
import type { Config } from './config/config.js';
import { openDatabase, type Database } from './db/database.js';
import { createServices, type Services } from './factory.js';
import type { GraphQLContext } from './graphql/context.js';
import { jobTopic } from './graphql/job-resolvers.js';
import { threadTopic } from './graphql/thread-resolvers.js';
import type { ThreadTimings } from './threads/service.js';
import { loaders } from './graphql/loaders.js';
import { pinnedFieldResolvers } from './graphql/pinned-fields.js';
import { followJobs } from './jobs/feed.js';
import { registerJobResultRoutes } from './jobs/routes.js';
import { tapRoutes } from './tap/routes.js';
import type { JobServiceOptions } from './jobs/service.js';
import { ReadScope } from './graphql/read-scope.js';
import { resolvers } from './graphql/resolvers.js';
import { ResponseCache, cacheGraphQLResponses } from './graphql/response-cache.js';
import { AnswerTooLargeError, RequestBudget, isRequestEnded } from './graphql/budget.js';
import { guardGraphQLRequests, guardSubscriptions, refusalBody } from './graphql/guard.js';
import { QUERY_LIMITS } from './graphql/limits.js';
import { logFailure, toConstellationError } from './http/errors.js';
import { graphiqlRoutes } from './http/graphiql.js';
import { consoleRoutes } from './http/console.js';
import { healthRoutes } from './http/health.js';
import { loginRoutes } from './http/login.js';
import { siteRoutes } from './http/sites.js';
import { followRegistry } from './services/registry-follower.js';
import { registerConfiguredSites, type Seeds } from './services/seeds.js';
import { StartPhases } from './start-phases.js';
import { stageCompletedJobs } from './staging/follow.js';
import { bearerIdentity, identifyRequests } from './auth/request-identity.js';
import { identityServicesFor } from './auth/identity-wiring.js';
import { loggerOptions } from './http/logging.js';
import { logRequests } from './http/access-log.js';
import { CallerSites, locateCallers } from './http/caller-site.js';
import { PUBLISH_KEY_HEADER } from './auth/rights.js';
import { instrument, measureSubscriptions, requestIdOptions } from './metrics/index.js';
import { scheduleTapUpkeep } from './tap/expiry.js';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Deepest GraphQL selection accepted: deep enough for real queries, shallow enough to stop abuse. */
export const MAX_QUERY_DEPTH = 12;

/** How often kept query results past their retention are removed. */
const RESULT_EXPIRY_MS = 3_600_000;

/** How often the coverage index looks for registry changes made by other broker processes. */
const COVERAGE_POLL_MS = 2_000;

export interface BuildOptions {
  /** An already open database (tests share one); otherwise the app opens and owns one. */
  database?: Database;
  /** A database already being opened for this app, which it owns (`serve` starts it early). */
  opening?: Promise<Database>;
  /** Skip migrations and seeds (the caller did them). */
  prepared?: boolean;
  logger?: boolean;
  /** Run the harvest schedules of federation.yaml in this process (serve does). */
  schedule?: boolean;
  /** HTTP client for talking to sites (tests shorten its timeouts). */
  http?: HttpClient;
  /** Job polling settings (tests poll faster). */
  jobs?: JobServiceOptions;
  /** Thread driving settings (tests take threads over sooner). */
  threads?: ThreadTimings;
  /** Where site credentials are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where log lines go (default stdout); tests capture them to check that no secret is written. */
  logStream?: NodeJS.WritableStream;
  /** Seeds already read and checked (serve checks them before it listens). */
  seeds?: Seeds;
}

/** The phases of a start, in order (the names /readyz and the log use). */
export const START_PHASES = ['database', 'migrations', 'sites and seeds', 'registry views', 'jobs and schedules'] as const;

/** A broker whose routes are registered but whose database and services are not started yet. */
export interface Broker {
  app: FastifyInstance;
  phases: StartPhases;
  /** Open the database, migrate, seed, load the registry views and start polling; the app answers 503 STARTING until this resolves. */
  start(): Promise<void>;
}

/**
 * Build the server without opening anything, so `serve` can listen at once and answer /readyz
 * with what is still starting. Nothing here touches the database or the network.
 */
export async function createBroker(config: Config, options: BuildOptions = {}): Promise<Broker> {
  const phases = new StartPhases(START_PHASES);
  const app = Fastify({
    logger: options.logger === false ? false : loggerOptions(config.logLevel, options.logStream),
    bodyLimit: config.bodyLimit,
    // One compact line per request instead (./http/access-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // A hop count trusts that many proxies nearest the broker (what proxy-addr does with a number).
    trustProxy: typeof config.server.trustProxy === 'number' ? hopsTrusted(config.server.trustProxy) : config.server.trustProxy,
    // A caller's X-Request-Id when it is a short token, else a new id (broker/metrics/request-id.ts).
    ...requestIdOptions(),
  });
  phases.logTo(app.log);
  let services: Services | undefined;
  const ready = () => {
    if (!services) throw new ConstellationError('STARTING', `the broker is still starting (${phases.current() ?? 'almost ready'}); try again in a moment`);
    return services;
  };
  app.decorate('services', { getter: ready });
  // Request ids in every log line, request latency and /metrics: first, so their hooks see every request.
  const instrumented = await instrument(app, { env: options.env ?? process.env, identity: () => services?.identity });
  logRequests(app, config.accessLog);

  // Until every phase is done only the probes and GraphiQL's page answer; the rest say why not.
  app.addHook('onRequest', async (request, reply) => {
    if (phases.ready || request.url === '/healthz' || request.url === '/readyz' || request.url === '/metrics' || request.url.startsWith('/graphiql')) return;
    const e = new ConstellationError('STARTING', `the broker is still starting (${phases.current() ?? 'almost ready'}); try again in a moment`);
    return reply.code(e.statusCode).header('retry-after', '1').send(e.toJSON());
  });
  locateCallers(app, new CallerSites(config));
  // Who is asking, decided before any route reads a body (a refused token never reaches a handler).
  identifyRequests(app, () => services?.identity);
  app.setErrorHandler((err, request, reply) => {
    const e = toConstellationError(err);
    logFailure(request.log, err, 'request failed');
    return reply.code(e.statusCode).send(e.toJSON());
  });
  // Every answer, errors and downloads included: never sniffed into another type, never framed,
  // no Referer to whatever a page links to. A route that sets its own CSP (GraphiQL) keeps it.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "frame-ancestors 'none'");
    return payload;
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ code: 'CONSTELLATION_E_NOT_FOUND', message: `no route ${request.method} ${request.url}` }),
  );
  // The guard's hooks come first: the cache decides from the operation the guard parsed.
  guardGraphQLRequests(app, { maxDepth: MAX_QUERY_DEPTH });
  if (config.responseCacheBytes > 0) cacheGraphQLResponses(app, new ResponseCache(config.responseCacheBytes), () => app.services.coverage.version);

  await app.register(mercurius as unknown as FastifyPluginAsync<MercuriusOptions>, {
    schema: await readFile(packagePath('schema.graphql'), 'utf8'),
    resolvers,
    loaders,
    // GraphiQL is served from its npm package (graphiqlRoutes), not mercurius' CDN page.
    graphiql: false,
    // Subscriptions read jobs through the pool: a socket lives too long for a request's read transaction.
    subscription: {
      // The upgrade request's own credential (header or session cookie), replaced by a bearer
      // token in connection_init's payload when the client sends one there (browsers cannot set
      // headers on a WebSocket).
      context: (_socket, request) => ({ services: ready(), identity: request.identity }),
      onConnect: async ({ payload }) => {
        const authorization = connectionAuthorization(payload);
        if (authorization === undefined) return true;
        try {
          return { identity: await bearerIdentity(authorization, services?.identity) };
        } catch (err) {
          app.log.info({ code: isConstellationError(err) ? err.code : undefined }, 'WebSocket connection_init refused: its token did not verify');
          return false;
        }
      },
    },
    jit: 1,
    cache: 1024,
    queryDepth: MAX_QUERY_DEPTH,
    // Subscriptions are parsed by mercurius alone (HTTP queries are parsed by the guard first).
    graphql: { parseOptions: { maxTokens: QUERY_LIMITS.maxTokens } },
    context: (request, reply): GraphQLContext => {
      const current = ready();
      const db = new ReadScope(current.pool);
      const budget = new RequestBudget(QUERY_LIMITS.maxObjects, QUERY_LIMITS.maxResponseBytes);
      // 'close' fires both when the response is sent and when the client goes away mid-request:
      // from then on the request's loaders and resolvers stop (RequestEndedError).
      reply.raw.once('close', () => {
        budget.end();
        void db.close();
      });
      const publishKey = request.headers[PUBLISH_KEY_HEADER];
      const callerSite = request.callerSite;
      return { db, budget, services: current, identity: request.identity, ...(typeof publishKey === 'string' ? { publishKey } : {}), ...(callerSite ? { callerSite } : {}) };
    },
    errorFormatter: (execution, ctx) => {
      // An answer that would pass the byte cap is refused whole, never sent in part.
      const tooLarge = (execution.errors ?? []).map((e) => (e as { originalError?: unknown }).originalError).find((e) => e instanceof AnswerTooLargeError);
      if (tooLarge) {
        ctx.reply.log.info({ bytes: tooLarge.value, limit: tooLarge.limit }, 'GraphQL answer refused: too large');
        return { statusCode: ErrorCodes.QUERY_TOO_COSTLY.status, response: JSON.parse(refusalBody({ measure: 'responseBytes', value: tooLarge.value, limit: tooLarge.limit, message: tooLarge.message })) };
      }
      const formatted = mercurius.defaultErrorFormatter(execution, ctx);
      const ended = (execution.errors ?? []).filter((e) => isRequestEnded((e as { originalError?: unknown }).originalError)).length;
      if (ended > 0) ctx.reply.log.info({ fields: ended }, 'GraphQL request ended before its answer was complete (client gone); its remaining fields were not read');
      // Our own errors keep their stable code and violations; GraphQL's own (syntax,
      // validation, depth) keep mercurius' messages.
      const errors = (execution.errors ?? []).flatMap((error) => {
        const original = (error as { originalError?: unknown }).originalError;
        const ours = ownError(original);
        if (ours === undefined) return mercurius.defaultErrorFormatter({ ...execution, errors: [error] }, ctx).response.errors ?? [];
        // A bug's message may leak internals: callers get the stable INTERNAL code, the log gets the cause.
        if (ours === 'bug') ctx.reply.log.error({ err: original }, 'resolver failed');
        const { code, message, violations } = ours === 'bug' ? { ...toConstellationError(original).toJSON(), message: 'internal error' } : ours.toJSON();
        return [{ ...error.toJSON(), message, extensions: { ...(error.extensions ?? {}), code, ...(violations ? { violations } : {}) } }];
      });
      return { statusCode: formatted.statusCode, response: { ...formatted.response, errors } };
    },
  });
  // The view's objects carry their nested rows: those fields skip the loaders' batching.
  app.graphql.defineResolvers(pinnedFieldResolvers(app.graphql.schema));
  guardSubscriptions(app, { maxDepth: MAX_QUERY_DEPTH });
  measureSubscriptions(app.graphql.schema, instrumented.metrics);
  await app.register(graphiqlRoutes);
  await app.register(consoleRoutes, { federation: config.federation.name, identity: Boolean(config.identity) });
  await app.register(siteRoutes);
  await app.register(healthRoutes, { phases });
  await app.register(loginRoutes, { login: () => services?.identity });
  registerJobResultRoutes(app);
  // The federation as one TAP 1.1 service (its own form parsers and VOTable error documents).
  await app.register(tapRoutes);

  // What start() opened, closed in reverse on app.close() whether or not the start finished.
  const closers: (() => Promise<void> | void)[] = [];
  /**
   * What takes on work (the job loop, thread drivers, harvest schedule): stopped first, in
   * preClose, so a stopping broker releases its leases at once for another to take over while
   * it still answers the requests in flight; the rest closes once they are answered.
   */
  const workers: (() => Promise<void> | void)[] = [];
  app.addHook('preClose', async () => {
    for (const stop of workers.reverse()) await stop();
  });
  app.addHook('onClose', async () => {
    for (const close of closers.reverse()) await close();
  });

  const start = async (): Promise<void> => {
    const database = await phases.run('database', async () => options.database ?? (await (options.opening ?? openDatabase(config.database))));
    if (!options.database) closers.push(() => database.close());
    closers.push(onConnectionLost(database.pool, (err) => app.log.warn({ err }, 'a database connection was lost (the server restarted or ended it); a statement running on it fails with DATABASE, and the pool opens a new one')));
    const created = createServices(config, database.pool, database.kind, {
      http: options.http,
      env: options.env,
      ...(config.identity ? { identity: identityServicesFor(config.identity, database.pool, options.env ?? process.env) } : {}),
      jobs: { onError: (err) => app.log.error({ err }, 'job polling failed'), ...options.jobs },
      onHarvestError: (err, what) => app.log.error({ err }, `${what} failed`),
      ...(options.threads ? { threads: options.threads } : {}),
      harvestObserver: instrumented.observers.harvest,
    });
    if (!options.http) closers.push(() => created.http.close());
    // Every exchange with a site is counted and logged (a client shared by tests stops telling this app at its close).
    closers.push(created.http.observe(instrumented.observers.upstream));
    instrumented.readFrom(() => services && { pool: services.pool, databaseKind: services.databaseKind, planner: services.planner });
    await phases.run('migrations', async () => {
      if (!options.prepared) await migrate(database.pool);
    });
    await phases.run('sites and seeds', async () => {
      if (!options.prepared) await registerConfiguredSites(database.pool, config, created.publisher, options.seeds);
    });
    await phases.run('registry views', async () => {
      await created.planner.refresh(database.pool);
      closers.push(followRegistry(database.pool, created.planner, COVERAGE_POLL_MS, {
        onError: (err) => app.log.error({ err }, 'following the registry failed; the coverage index and planner keep their last state until it works again'),
        onRecovered: () => app.log.info('following the registry works again'),
      }));
    });
    await phases.run('jobs and schedules', async () => {
      // On the embedded database other processes only join this one's server, so every job
      // change is made here; PostgreSQL may be shared by several brokers, whose changes arrive by NOTIFY.
      const stopFeed = followJobs(created.jobs, database.pool, (job) => void app.graphql.pubsub.publish({ topic: jobTopic(job.id), payload: { jobUpdated: job } }), {
        listen: database.kind === 'postgresql',
        onError: (err) => app.log.error({ err }, 'job feed failed'),
      });
      workers.push(() => created.jobs.stop());
      closers.push(stopFeed);
      const stopThreadFeed = created.threads.onUpdate((thread) => void app.graphql.pubsub.publish({ topic: threadTopic(thread.id), payload: { threadUpdated: thread } }));
      // Threads stop before the job service they submit to (workers stop in reverse).
      workers.push(() => created.threads.stop());
      closers.push(stopThreadFeed);
      services = created;
      await created.jobs.start();
      // Unfinished threads (this broker's before a restart, or another's that stopped) are driven again.
      await created.threads.startLoop();
      // Kept results past their retention are removed now and every hour (any broker may; it is idempotent).
      const expireResults = () => {
        void created.jobs.expireResults().catch((err) => app.log.error({ err }, 'removing expired results failed'));
        void created.threads.expireResults(config.results.retentionDays * 86_400_000).catch((err) => app.log.error({ err }, 'removing expired thread results failed'));
      };
      expireResults();
      const expiry = setInterval(expireResults, RESULT_EXPIRY_MS);
      expiry.unref();
      closers.push(() => clearInterval(expiry));
      // Async TAP jobs: DESTRUCTION and EXECUTIONDURATION kept every minute.
      closers.push(scheduleTapUpkeep(created, (err, what) => app.log.error({ err }, what)));
      // A query that asked for stageTo is staged by the broker that saw it complete.
      closers.push(stageCompletedJobs(created.jobs, created.stager, (err, what) => app.log.error({ err }, `${what} failed`)));
      // Runs a killed broker left RUNNING are closed once their lease lapsed (and before every harvest).
      void created.harvester.closeAbandoned();
      // Harvests in flight (scheduled or asked for) end recorded before the pool closes; the
      // schedule stops first (workers stop in reverse), so it starts none meanwhile.
      workers.push(() => created.harvester.stop());
      if (options.schedule) {
        const scheduler = startScheduler(config, created.harvester, database.pool, (err) => app.log.error({ err }, 'scheduled harvest failed'));
        workers.push(() => scheduler.stop());
      }
    });
  };
  return { app, phases, start };
}

/** Build a ready broker: routes registered and every start phase done (it never listens). */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { app, start } = await createBroker(config, options);
  try {
    await app.ready();
    await start();
    return app;
  } catch (err) {
    await app.close();
    throw err;
  }
}

/** Trust the `hops` proxies nearest the broker. */
function hopsTrusted(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/** The Authorization value a connection_init payload carries (`{authorization}` or `{headers: {authorization}}`, any case). */
function connectionAuthorization(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const from = (o: object) => Object.entries(o).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const headers = (payload as { headers?: unknown }).headers;
  const value = from(payload) ?? (typeof headers === 'object' && headers !== null ? from(headers) : undefined);
  return typeof value === 'string' ? value : undefined;
}

/**
 * How a GraphQL error is answered: undefined for GraphQL's and mercurius' own (syntax,
 * validation, depth) and a request that ended, which keep their messages; our coded error
 * (ours, or fastify's refusal of the request such as a body too large); or 'bug'.
 */
function ownError(err: unknown): ConstellationError | 'bug' | undefined {
  if (isRequestEnded(err) || !(err instanceof Error) || err instanceof GraphQLError) return undefined;
  if (isConstellationError(err)) return err;
  if (String((err as { code?: unknown }).code ?? '').startsWith('MER_ERR')) return undefined;
  const mapped = toConstellationError(err);
  return mapped.kind === 'INTERNAL' ? 'bug' : mapped;
}
