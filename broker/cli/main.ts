/** The `constellation` command: serve, migrate, sites, datasets, harvest. Heavy modules load only for the command that needs them. */
import { parseArgs } from 'node:util';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import type { Database } from '../db/database.js';
import type { Services } from '../factory.js';
import type { Catalogue } from './catalogue.js';
import { formatTable } from './table.js';

const USAGE = `usage: constellation <command> [--config FILE]

commands:
  serve       start the broker on HOST:PORT (default 127.0.0.1:4000); GraphQL at /graphql
  migrate     apply pending database migrations and exit
  sites       list the federation's sites
  datasets    list canonical datasets and where their replicas are  [--text TEXT] [--site ID]
  crossmatch  cross-match two datasets in a cone through the running broker, with progress
              --left ID --right ID --cone RA,DEC,R --radius ARCSEC [--mode best|all]
              [--strategy same-site|upload|broker] [--out FILE] [--format csv|votable|json] [--json]
              e.g. constellation crossmatch --left gaia_dr3.gaia_source --right ps1_dr2.mean_object --cone 180,0,0.5 --radius 1 --out pairs.csv
  thread      a cross-match thread's state, plan, steps and progress  ID [--json]
  demo        start two simulated centres and a broker, cross-match Gaia-like and Pan-STARRS-like
              catalogues through the public API and check the pairs against the truth  [--keep]
  harvest     harvest one site now, or every site  [SITE] [--confirm]
              (--confirm applies a harvest held for removing too many datasets)
  login       log in to the federation's identity provider (device code: open the address shown
              and confirm the code); the token is cached in CONSTELLATION_CONFIG_DIR
  logout      revoke and forget the cached login
  whoami      who the running broker says you are  [--json]

environment:
  HOST, PORT              where serve listens
  DATABASE_URL            PostgreSQL to use; unset: the embedded PGlite under CONSTELLATION_DATA
  CONSTELLATION_CONFIG    federation file (default ./federation.yaml; --config overrides)
  CONSTELLATION_DATA      embedded database directory (default ./.constellation)
  LOG_LEVEL               fatal, error, warn, info (default), debug, trace
  CONSTELLATION_CONFIG_DIR  where login caches tokens (default $XDG_CONFIG_HOME/constellation or ~/.config/constellation)
  CONSTELLATION_CLI_CLIENT_ID  the public client login uses (default identity.cliClientId, else identity.clientId)
  CONSTELLATION_URL       the broker whoami asks (default http://HOST:PORT)
`;

const COMMANDS = new Set(['serve', 'migrate', 'sites', 'datasets', 'harvest', 'login', 'logout', 'whoami', 'demo', 'crossmatch', 'thread']);

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, text: { type: 'string' }, site: { type: 'string' }, confirm: { type: 'boolean' }, json: { type: 'boolean' }, keep: { type: 'boolean' }, left: { type: 'string' }, right: { type: 'string' }, cone: { type: 'string' },
        radius: { type: 'string' }, mode: { type: 'string' }, strategy: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    // An unknown or malformed option is a usage error (exit 2), not a failure.
    process.stderr.write(`constellation: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    process.stderr.write(`constellation: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  // The demo brings its own federation (two simulated centres); it reads no federation.yaml.
  if (command === 'demo') return (await import('../../demo/run-demo.js')).runDemo({ keep: values.keep === true });
  const config = await loadConfig(process.env, values.config);
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serve(config);
    case 'migrate': {
      const { migrate } = await import('../../registry/store/migrate.js');
      const db = await (await import('../db/database.js')).openDatabase(config.database);
      try {
        const { applied } = await migrate(db.pool);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'sites':
    case 'datasets': {
      const show = async (catalogue: Catalogue) => {
        process.stdout.write(command === 'sites' ? sitesTable(await catalogue.sites()) : datasetsTable(await catalogue.replicas({ text: values.text, site: values.site })));
        return 0;
      };
      const { runningBroker, databaseCatalogue } = await import('./catalogue.js');
      const broker = await runningBroker(config);
      if (broker) return show(broker);
      const where = config.database.url ? 'the PostgreSQL database at DATABASE_URL' : `the embedded database in ${config.database.dataDir}`;
      process.stderr.write(`constellation: no broker answering at ${config.server.host}:${config.server.port}; reading ${where} directly (slower; a running broker answers at once)\n`);
      return withRegistry(config, (db) => show(databaseCatalogue(db.pool, where)));
    }
    case 'harvest':
      if (values.confirm && !positionals[1]) throw new ConstellationError('INVALID_ARGUMENT', 'harvest --confirm needs the SITE whose held harvest to apply');
      return withRegistry(config, async (_db, services) => {
        const site = positionals[1];
        const runs = site ? [await services.harvester.harvest(site, 'cli', { confirm: values.confirm })] : await services.harvester.harvestAll('cli');
        process.stdout.write(formatTable(['SITE', 'OUTCOME', 'BYTES', 'MS', 'ERROR'],
          runs.map((r) => [r.siteId, r.outcome, r.bytes, r.durationMs, r.errorCode ? `${r.errorCode}: ${r.errorMessage}` : ''])));
        return runs.every((r) => r.outcome === 'OK' || r.outcome === 'NOT_MODIFIED' || r.outcome === 'RESTORED') ? 0 : 1;
      });
    case 'login':
      return (await import('./login.js')).login(config);
    case 'logout':
      return (await import('./login.js')).logout(config);
    case 'crossmatch':
      return (await import('./crossmatch.js')).crossmatchCommand(config, values);
    case 'thread':
      return (await import('./crossmatch.js')).threadCommand(config, positionals[1], values.json === true);
    case 'whoami':
      return (await import('./login.js')).whoami(config, values.json === true);
    default:
      return 2;
  }
}

/** Open the database, bring it up to date with the configured sites, run `fn`, and close everything whatever happens. */
async function withRegistry(config: Config, fn: (db: Database, services: Services) => Promise<number>): Promise<number> {
  const [{ openDatabase }, { createServices }, { migrate }, { registerConfiguredSites }] = await Promise.all([
    import('../db/database.js'),
    import('../factory.js'),
    import('../../registry/store/migrate.js'),
    import('../services/seeds.js'),
  ]);
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

function sitesTable(sites: Awaited<ReturnType<Catalogue['sites']>>): string {
  return formatTable(
    ['SITE', 'NAME', 'PLATFORM', 'STATUS', 'ORIGIN', 'AS OF', 'URL'],
    sites.map((s) => [s.id, s.name, s.platform, s.status, s.origin ?? '-', s.asOf?.slice(0, 10) ?? '-', s.url]),
  );
}

function datasetsTable(replicas: Awaited<ReturnType<Catalogue['replicas']>>): string {
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
