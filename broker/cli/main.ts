/** The `constellation` command: serve, migrate, sites, datasets. */
import { parseArgs } from 'node:util';
import { isConstellationError } from '../../registry/model/errors.js';
import { migrate } from '../../registry/store/migrate.js';
import { replicasByDatasets, searchDatasets } from '../../registry/store/queries/catalogue.js';
import { listSites } from '../../registry/store/queries/sites.js';
import { buildApp } from '../app.js';
import type { Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { openDatabase, type Database } from '../db/database.js';
import { createServices, type Services } from '../factory.js';
import { registerConfiguredSites } from '../services/seeds.js';
import { formatTable } from './table.js';

const USAGE = `usage: constellation <command> [--config FILE]

commands:
  serve       start the broker on HOST:PORT (default 127.0.0.1:4000); GraphQL at /graphql
  migrate     apply pending database migrations and exit
  sites       list the federation's sites
  datasets    list canonical datasets and where their replicas are  [--text TEXT] [--site ID]
  harvest     harvest one site now, or every site  [SITE]

environment:
  HOST, PORT              where serve listens
  DATABASE_URL            PostgreSQL to use; unset: the embedded PGlite under CONSTELLATION_DATA
  CONSTELLATION_CONFIG    federation file (default ./federation.yaml; --config overrides)
  CONSTELLATION_DATA      embedded database directory (default ./.constellation)
  LOG_LEVEL               fatal, error, warn, info (default), debug, trace
`;

const COMMANDS = new Set(['serve', 'migrate', 'sites', 'datasets', 'harvest']);

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, text: { type: 'string' }, site: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    process.stderr.write(`constellation: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  const config = await loadConfig(process.env, values.config);
  switch (command) {
    case 'serve': {
      const app = await buildApp(config, { schedule: true });
      const address = await app.listen({ host: config.server.host, port: config.server.port });
      app.log.info(`constellation serving federation "${config.federation.name}" (${app.services.databaseKind} database): GraphQL at ${address}/graphql`);
      const stop = async () => {
        await app.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return new Promise<number>(() => {});
    }
    case 'migrate': {
      const db = await openDatabase(config.database);
      try {
        const { applied } = await migrate(db.pool);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'sites':
    case 'datasets':
      return withRegistry(config, async (db) => {
        process.stdout.write(command === 'sites' ? await sitesTable(db.pool) : await datasetsTable(db.pool, values.text, values.site));
        return 0;
      });
    case 'harvest':
      return withRegistry(config, async (_db, services) => {
        const site = positionals[1];
        const runs = site ? [await services.harvester.harvest(site, 'cli')] : await services.harvester.harvestAll('cli');
        process.stdout.write(formatTable(['SITE', 'OUTCOME', 'BYTES', 'MS', 'ERROR'],
          runs.map((r) => [r.siteId, r.outcome, r.bytes, r.durationMs, r.errorCode ? `${r.errorCode}: ${r.errorMessage}` : ''])));
        return runs.every((r) => r.outcome === 'OK' || r.outcome === 'NOT_MODIFIED') ? 0 : 1;
      });
    default:
      return 2;
  }
}

/** Open the database, bring it up to date with the configured sites, run `fn`, and close everything whatever happens. */
async function withRegistry(config: Config, fn: (db: Database, services: Services) => Promise<number>): Promise<number> {
  const db = await openDatabase(config.database);
  const services = createServices(config, db.pool, db.kind);
  try {
    await migrate(db.pool);
    await registerConfiguredSites(db.pool, config, services.publisher);
    return await fn(db, services);
  } finally {
    await services.http.close();
    await db.close();
  }
}

async function sitesTable(db: Parameters<typeof listSites>[0]): Promise<string> {
  const sites = await listSites(db);
  return formatTable(
    ['SITE', 'NAME', 'PLATFORM', 'STATUS', 'ORIGIN', 'AS OF', 'URL'],
    sites.map((s) => [s.id, s.name, s.platform, s.status, s.origin ?? '-', s.asOf?.toISOString().slice(0, 10) ?? '-', s.url]),
  );
}

async function datasetsTable(db: Parameters<typeof listSites>[0], text?: string, site?: string): Promise<string> {
  const datasets = await searchDatasets(db, { text, site, limit: 100_000, offset: 0 });
  const replicas = await replicasByDatasets(db, datasets.map((d) => d.id));
  const rows = replicas.map((r) => [r.datasetId, r.siteId, r.table, r.rows, r.access.public ? 'public' : r.access.groups.join(',') || 'private']);
  return formatTable(['DATASET', 'SITE', 'LOCAL TABLE', 'ROWS', 'ACCESS'], rows);
}

/** Print an error the way an operator wants to read it: code, message, every violation. */
export function reportError(err: unknown): void {
  if (isConstellationError(err)) {
    process.stderr.write(`constellation: ${err.code}: ${err.message}\n`);
    for (const v of err.violations) process.stderr.write(`  ${v.path}: ${v.message} [${v.rule}]\n`);
  } else {
    process.stderr.write(`constellation: ${(err as Error)?.stack ?? String(err)}\n`);
  }
}
