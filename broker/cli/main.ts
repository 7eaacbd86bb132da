/** The `constellation` command: serve, migrate, sites, datasets, harvest, and the commands that talk to a running broker. Heavy modules load only for the command that needs them. */
import { parseArgs } from 'node:util';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import type { Database } from '../db/database.js';
import type { Services } from '../factory.js';
import type { Catalogue } from './catalogue.js';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { commandHelp } from './help.js';
import { errorDocument, writeJson } from './output.js';
import { formatTable } from './table.js';
import { printable, printableInline } from './terminal.js';

const USAGE = `usage: constellation <command> [--config FILE] [--broker URL] [--json] [--help]

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
  query       run an ADQL query where its data is, wait with progress, stream the result
              "ADQL" [--out FILE] [--format csv|votable|json] [--site ID] [--maxrec N] [--json]
              e.g. constellation query "SELECT TOP 10 source_id, ra, dec FROM gaia_dr3.gaia_source" --out gaia.csv
  plan        where would this run, and why: every site holding the data, with verdict and reasons, chosen first
              DATASET... [--cone RA,DEC,R] [--image REF --cores N --memory GB] [--every-site] [--json]
  jobs        your jobs, newest first  [--state S,...] [--kind query|container] [--limit N] [--json]
  job         one of your jobs with its history  ID [--json]
  cancel      cancel one of your jobs  ID [--json]
  images      the container images the sites advertise  [--text T] [--software S] [--site ID] [--json]
  publish     publish a capability document for a site  FILE --site ID [--key-env VAR] [--json]
              (the publish key from CONSTELLATION_PUBLISH_KEY or the variable --key-env names)
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
  CONSTELLATION_URL       the broker whoami, crossmatch, thread, query, plan, jobs, job, cancel,
                          images and publish talk to (default http://HOST:PORT; --broker URL overrides)
  CONSTELLATION_PUBLISH_KEY  the site's publish key for publish (X-Publish-Key)
  NO_COLOR                set: no colour even on a terminal

Every command takes --help (its options and an example); --json prints one JSON document on
stdout and nothing else (a failure too: {"error":{"code","message"},"exitCode":N}).

${EXIT_CODES_HELP}`;

const COMMANDS = new Set(['serve', 'migrate', 'sites', 'datasets', 'harvest', 'login', 'logout', 'whoami', 'demo', 'crossmatch', 'thread', 'query', 'plan', 'jobs', 'job', 'cancel', 'images', 'publish']);
/** Commands that only talk to a running broker: they need no federation file of their own. */
const CLIENT_COMMANDS = new Set(['query', 'plan', 'jobs', 'job', 'cancel', 'images', 'publish']);
/** Commands that take at most this many positional arguments after their name. */
const MAX_POSITIONALS: Record<string, number> = { query: 1, job: 1, cancel: 1, thread: 1, publish: 1, harvest: 1 };

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, text: { type: 'string' }, site: { type: 'string' }, confirm: { type: 'boolean' }, json: { type: 'boolean' }, keep: { type: 'boolean' }, left: { type: 'string' }, right: { type: 'string' }, cone: { type: 'string' },
        radius: { type: 'string' }, mode: { type: 'string' }, strategy: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' },
        broker: { type: 'string' }, maxrec: { type: 'string' }, state: { type: 'string' }, kind: { type: 'string' }, limit: { type: 'string' }, image: { type: 'string' }, arch: { type: 'string' },
        cores: { type: 'string' }, memory: { type: 'string' }, gpus: { type: 'string' }, walltime: { type: 'string' }, software: { type: 'string' }, type: { type: 'string' }, 'key-env': { type: 'string' }, 'every-site': { type: 'boolean' } },
    });
  } catch (err) {
    // An unknown or malformed option is a usage error (exit 2), not a failure.
    return usageError((err as Error).message, argv.includes('--json'));
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help && command && COMMANDS.has(command)) {
    process.stdout.write(commandHelp(command) ?? USAGE);
    return EXIT.OK;
  }
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? EXIT.OK : EXIT.USAGE;
  }
  if (!COMMANDS.has(command)) return usageError(`unknown command "${command}"`, values.json === true);
  if (positionals.length - 1 > (MAX_POSITIONALS[command] ?? (command === 'plan' ? Infinity : 0))) {
    return usageError(`${command} takes ${MAX_POSITIONALS[command] ?? 0} argument(s), not ${positionals.length - 1}: ${positionals.slice(1).map((p) => JSON.stringify(p)).join(' ')}${command === 'query' ? ' (quote the whole query)' : ''}`, values.json === true);
  }
  if (values.json && (command === 'serve' || command === 'demo')) {
    return usageError(`${command} has no --json: ${command === 'serve' ? 'it runs until stopped and logs JSON lines' : 'it prints a report as it runs'}`, true);
  }
  // --broker names the running broker for every command that talks to one, as CONSTELLATION_URL does.
  if (values.broker !== undefined && !/^https?:\/\/[^\s/]+/.test(values.broker)) return usageError(`--broker must be an http(s) URL, not "${values.broker}"`, values.json === true);
  const env = values.broker === undefined ? process.env : { ...process.env, CONSTELLATION_URL: values.broker };
  // The demo brings its own federation (two simulated centres); it reads no federation.yaml.
  if (command === 'demo') return (await import('../../demo/run-demo.js')).runDemo({ keep: values.keep === true });
  const config = CLIENT_COMMANDS.has(command) ? await (await import('./broker-client.js')).clientConfig(process.env, values.config) : await loadConfig(process.env, values.config);
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).serve(config);
    case 'migrate': {
      const { migrate } = await import('../../registry/store/migrate.js');
      const db = await (await import('../db/database.js')).openDatabase(config.database);
      try {
        const { applied } = await migrate(db.pool);
        if (values.json) writeJson({ applied });
        else process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'sites':
    case 'datasets': {
      const show = async (catalogue: Catalogue) => {
        if (values.json) writeJson(command === 'sites' ? { sites: await catalogue.sites() } : { replicas: await catalogue.replicas({ text: values.text, site: values.site }) });
        else process.stdout.write(command === 'sites' ? sitesTable(await catalogue.sites()) : datasetsTable(await catalogue.replicas({ text: values.text, site: values.site })));
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
        if (values.json) writeJson({ runs: runs.map((r) => ({ siteId: r.siteId, outcome: r.outcome, bytes: r.bytes, durationMs: r.durationMs, errorCode: r.errorCode, errorMessage: r.errorMessage })) });
        else process.stdout.write(formatTable(['SITE', 'OUTCOME', 'BYTES', 'MS', 'ERROR'],
          runs.map((r) => [r.siteId, r.outcome, r.bytes, r.durationMs, r.errorCode ? `${r.errorCode}: ${r.errorMessage}` : ''])));
        return runs.every((r) => r.outcome === 'OK' || r.outcome === 'NOT_MODIFIED' || r.outcome === 'RESTORED') ? 0 : 1;
      });
    case 'login':
      return (await import('./account.js')).loginCommand(config, values.json === true);
    case 'logout':
      return (await import('./account.js')).logoutCommand(config, values.json === true);
    case 'crossmatch':
      return (await import('./crossmatch.js')).crossmatchCommand(config, values, env);
    case 'thread':
      return (await import('./crossmatch.js')).threadCommand(config, positionals[1], values.json === true, env);
    case 'whoami':
      return (await import('./login.js')).whoami(config, values.json === true, env);
    case 'query':
      return (await import('./query.js')).queryCommand(config, { ...values, adql: positionals[1] }, env);
    case 'plan':
      return (await import('./plan.js')).planCommand(config, { ...values, everySite: values['every-site'], datasets: positionals.slice(1) }, env);
    case 'jobs':
      return (await import('./jobs.js')).jobsCommand(config, values, env);
    case 'job':
      return (await import('./jobs.js')).jobCommand(config, positionals[1], values.json === true, env);
    case 'cancel':
      return (await import('./jobs.js')).cancelCommand(config, positionals[1], values.json === true, env);
    case 'images':
      return (await import('./images.js')).imagesCommand(config, values, env);
    case 'publish':
      return (await import('./publish.js')).publishCommand(config, { file: positionals[1], site: values.site, keyEnv: values['key-env'], json: values.json }, env);
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

/** A usage error (exit 2): the message and the usage on stderr, and under --json the error document on stdout. */
function usageError(message: string, json: boolean): number {
  process.stderr.write(`constellation: ${printableInline(message)}\n\n${USAGE}`);
  if (json) writeJson(errorDocument(new ConstellationError('INVALID_ARGUMENT', message), EXIT.USAGE));
  return EXIT.USAGE;
}

/** Print an error the way an operator wants to read it: code, message, every violation (made printable: they may quote a site). */
export function reportError(err: unknown): void {
  if (isConstellationError(err)) {
    process.stderr.write(`constellation: ${err.code}: ${printableInline(err.message)}\n`);
    for (const v of err.violations) process.stderr.write(`  ${printableInline(`${v.path}: ${v.message} [${v.rule}]`)}\n`);
  } else {
    process.stderr.write(`constellation: ${printable((err as Error)?.stack ?? String(err))}\n`);
  }
}
