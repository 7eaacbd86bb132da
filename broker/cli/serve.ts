/** `constellation serve`: check what can be checked offline, listen at once, then start phase by phase. */
import { createServer } from 'node:net';
import { ConstellationError } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { openDatabase, type Database } from '../db/database.js';
import { checkDataDir } from '../db/embedded.js';
import { loadSeeds } from '../services/seeds.js';
import { startTextThreads } from '../jobs/text-threads.js';

/** How long a stopping broker lets the requests in flight finish before cutting their connections. */
const DRAIN_MS = 10_000;

/**
 * Serve until SIGINT or SIGTERM. Seeds, the data directory and the port are checked before
 * the database starts, so each fails at once with its own code and what to do; the port then
 * answers /readyz 503 with the start phases until the broker is ready.
 */
export async function serve(config: Config): Promise<never> {
  const seeds = await loadSeeds(config);
  if (!config.database.url) await checkDataDir(config.database.dataDir);
  await checkPort(config.server);
  // The database starts now, while the broker's modules load: the embedded one in a process of
  // its own (its statements then never hold the broker's event loop, and its WASM memory is not
  // the broker's), which boots on the other core meanwhile.
  const opening = openDatabase(config.database, { embeddedHost: 'separate-process' });
  // Awaited by the start's database phase; marked handled so a failure before then is not an
  // unhandled rejection (it is reported by that phase).
  opening.catch(() => undefined);
  const { createBroker } = await import('../app.js');
  const { app, phases, start } = await createBroker(config, { schedule: true, seeds, opening });
  let address: string;
  try {
    address = await app.listen({ host: config.server.host, port: config.server.port });
  } catch (err) {
    await app.close();
    await closeOpening(opening);
    throw listenError(err, config.server);
  }
  const database = config.database.url ? 'PostgreSQL at DATABASE_URL' : `the embedded database in ${config.database.dataDir}`;
  app.log.info(`constellation listening at ${address} (federation "${config.federation.name}", ${database}); /readyz answers 503 until started`);
  const stop = async () => {
    // fastify closes the connections idle at close() once; one busy then would stay open until
    // its keep-alive timeout (72 s). Swept until closed, each goes once its answer is sent, and
    // whatever is still open after DRAIN_MS is cut (an orchestrator's grace is often 30 s).
    const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
    const cut = setTimeout(() => app.server.closeAllConnections(), DRAIN_MS);
    try {
      await app.close();
    } finally {
      clearInterval(sweep);
      clearTimeout(cut);
    }
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // The CSV/JSON conversion threads start beside the phases (it never fails: a thread that cannot
  // start is a warning, and results are then converted on the event loop).
  void startTextThreads();
  try {
    await start();
  } catch (err) {
    await app.close().catch((closeErr: unknown) => app.log.error({ err: closeErr }, 'closing after a failed start failed'));
    throw err;
  }
  app.log.info({ ms: phases.elapsedMs(), phases: phases.report() }, `constellation ready in ${phases.elapsedMs()} ms: GraphQL at ${address}/graphql, GraphiQL at ${address}/graphiql`);
  return new Promise<never>(() => {});
}

/** PORT_IN_USE before anything starts when the port is taken (a listen that loses a race later reports the same). */
async function checkPort(server: Config['server']): Promise<void> {
  if (server.port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host: server.host, port: server.port, exclusive: true }, () => resolve());
  }).catch((err: unknown) => {
    throw listenError(err, server);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** Close a database opened for a start that failed before the app took it over. */
async function closeOpening(opening: Promise<Database>): Promise<void> {
  const database = await opening.catch(() => undefined);
  await database?.close();
}

/** PORT_IN_USE (or a plain coded error) for a failed listen, saying what to do. */
function listenError(err: unknown, server: Config['server']): ConstellationError {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${server.host}:${server.port}`;
  if (code === 'EADDRINUSE') {
    return new ConstellationError('PORT_IN_USE', `port ${where} is in use by another process (another broker?); stop it, or set PORT to a free port`, { cause: err });
  }
  if (code === 'EACCES') {
    return new ConstellationError('PORT_IN_USE', `not allowed to listen on ${where}; ports below 1024 need privileges: set PORT to 1024 or above`, { cause: err });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new ConstellationError('INVALID_CONFIG', `cannot listen on ${where}: HOST is not an address of this machine`, { cause: err });
  }
  return new ConstellationError('INTERNAL', `cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
}
