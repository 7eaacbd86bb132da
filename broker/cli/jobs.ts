/** `constellation jobs`, `job ID` and `cancel ID`: the caller's jobs at the running broker. */
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { brokerClient } from './broker-client.js';
import { EXIT } from './exit-codes.js';
import { writeJson } from './output.js';
import { JOB_VIEW, type JobView } from './query.js';
import { formatTable } from './table.js';
import { palette, printableInline } from './terminal.js';

/** What `constellation jobs` was given. */
export interface JobsArgs {
  state?: string;
  kind?: string;
  limit?: string;
  json?: boolean;
}

interface JobDetail extends JobView {
  request: unknown;
  history: { at: string; from: string | null; to: string; site: string | null; errorCode: string | null; message: string | null }[];
}

const STATES = ['PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'];
const KINDS = ['QUERY', 'CONTAINER'];

/** The JobFilter and limit from the command's arguments; INVALID_ARGUMENT naming the option otherwise. */
export function jobsFilter(args: JobsArgs): { filter: Record<string, unknown>; limit: number } {
  const filter: Record<string, unknown> = {};
  if (args.state !== undefined) {
    const states = args.state.split(',').map((s) => s.trim().toUpperCase());
    const bad = states.find((s) => !STATES.includes(s));
    if (bad !== undefined) throw invalidArgument('--state', `must be a comma-separated list of ${STATES.join(', ')}, not "${bad}"`);
    filter.states = states;
  }
  if (args.kind !== undefined) {
    const kind = args.kind.toUpperCase();
    if (!KINDS.includes(kind)) throw invalidArgument('--kind', `must be query or container, not "${args.kind}"`);
    filter.kinds = [kind];
  }
  const limit = Number(args.limit ?? 50);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw invalidArgument('--limit', `must be a whole number from 1 to 1000, not "${args.limit}"`);
  return { filter, limit };
}

/** `constellation jobs [--state S,...] [--kind query|container] [--limit N] [--json]`: the caller's jobs, newest first. */
export async function jobsCommand(config: Config, args: JobsArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { filter, limit } = jobsFilter(args);
  const broker = await brokerClient(config, env);
  const { jobs } = await broker.graphql<{ jobs: JobView[] }>(`query($f: JobFilter, $l: Int) { jobs(filter: $f, limit: $l) { ${JOB_VIEW} } }`, { f: filter, l: limit });
  if (args.json) {
    writeJson({ jobs });
    return EXIT.OK;
  }
  const colour = palette(process.stdout, env);
  const rows = jobs.map((j) => [j.id, j.kind, j.state, j.site?.id ?? '-', j.createdAt.slice(0, 19).replace('T', ' '), j.error ? `${j.error.code}: ${j.error.message}` : '']);
  process.stdout.write(colourStates(formatTable(['ID', 'KIND', 'STATE', 'SITE', 'CREATED (UTC)', 'ERROR'], rows), colour));
  return EXIT.OK;
}

/** `constellation job ID [--json]`: one job with its history. */
export async function jobCommand(config: Config, id: string | undefined, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!id) throw invalidArgument('ID', 'is required: constellation job <job id> (constellation jobs lists them)');
  const broker = await brokerClient(config, env);
  const { job } = await broker.graphql<{ job: JobDetail | null }>(`query($id: ID!) { job(id: $id) { ${JOB_VIEW} request history { at from to site errorCode message } } }`, { id });
  if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id} of yours`);
  const withUrl = { ...job, results: job.results ? `${broker.base}${job.results}` : null };
  if (json) {
    writeJson({ job: withUrl });
    return EXIT.OK;
  }
  const colour = palette(process.stdout, env);
  const line = (label: string, value: string | null | undefined) => (value ? `${`${label}:`.padEnd(11)}${printableInline(value)}\n` : '');
  process.stdout.write(
    `job ${job.id}: ${stateColour(job.state, colour)}\n` +
      line('kind', job.kind) +
      line('site', job.site?.id ? `${job.site.id}${job.sitePhase ? ` (phase ${job.sitePhase})` : ''}` : '-') +
      line('created', job.createdAt) +
      line('started', job.startedAt) +
      line('finished', job.finishedAt) +
      line('results', withUrl.results) +
      line('error', job.error ? `${job.error.code}: ${job.error.message}` : null) +
      line('not answering since', job.unreachableSince),
  );
  const adql = (job.request as { adql?: unknown } | null)?.adql;
  if (typeof adql === 'string') process.stdout.write(`query:\n  ${printableInline(adql)}\n`);
  if (job.history.length > 0) process.stdout.write('history:\n');
  for (const h of job.history) {
    const what = [h.from ? `${h.from} -> ${h.to}` : h.to, h.site, h.errorCode, h.message].filter(Boolean).join('  ');
    process.stdout.write(`  ${h.at.slice(0, 23).replace('T', ' ')}  ${printableInline(what)}\n`);
  }
  return EXIT.OK;
}

/** `constellation cancel ID [--json]`: ask the broker to cancel the job; a finished job is shown as it is. */
export async function cancelCommand(config: Config, id: string | undefined, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!id) throw invalidArgument('ID', 'is required: constellation cancel <job id>');
  const broker = await brokerClient(config, env);
  const { cancelJob } = await broker.graphql<{ cancelJob: JobView }>(`mutation($id: ID!) { cancelJob(id: $id) { ${JOB_VIEW} } }`, { id });
  if (json) writeJson({ job: cancelJob });
  else process.stdout.write(`job ${cancelJob.id}: ${stateColour(cancelJob.state, palette(process.stdout, env))}${cancelJob.state === 'ABORTED' ? '' : ' (it had already ended; nothing to cancel)'}\n`);
  return EXIT.OK;
}

function stateColour(state: string, colour: ReturnType<typeof palette>): string {
  if (state === 'COMPLETED') return colour.green(state);
  if (state === 'ERROR' || state === 'ABORTED') return colour.red(state);
  return colour.yellow(state);
}

/** Colour the state words of a table made by formatTable (already printable, so only our own SGR sequences are added). */
function colourStates(table: string, colour: ReturnType<typeof palette>): string {
  return table.replace(/ (COMPLETED|ERROR|ABORTED|PENDING|QUEUED|EXECUTING) /g, (_m, s: string) => ` ${stateColour(s, colour)} `);
}
