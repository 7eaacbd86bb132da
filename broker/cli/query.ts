/**
 * `constellation query "ADQL"`: submit through the broker's public GraphQL API (submitQuery),
 * wait for the job with a progress line on a terminal, then stream its result from the job's
 * result route to --out or stdout. Ctrl-C while waiting cancels the job.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { brokerClient, type BrokerClient } from './broker-client.js';
import { resultFormat, writeResult } from './download.js';
import { EXIT } from './exit-codes.js';
import { elapsed, formatBytes, writeJson } from './output.js';
import { palette, printableInline, ProgressLine } from './terminal.js';

/** What `constellation query` was given. */
export interface QueryArgs {
  adql?: string;
  out?: string;
  format?: string;
  site?: string;
  maxrec?: string;
  json?: boolean;
}

/** The fields of a job the query and job commands show. */
export interface JobView {
  id: string;
  kind: string;
  state: string;
  site: { id: string } | null;
  sitePhase: string | null;
  results: string | null;
  error: { code: string; message: string } | null;
  unreachableSince: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The GraphQL selection of a JobView. */
export const JOB_VIEW = 'id kind state site { id } sitePhase results error { code message } unreachableSince createdAt startedAt finishedAt';

const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);
/** Polling starts quick (a small sync query ends in well under a second) and slows to this. */
const POLL_MAX_MS = 2_000;

/** The submitQuery input from the command's arguments; INVALID_ARGUMENT naming the argument otherwise. */
export function queryInput(args: QueryArgs): Record<string, unknown> {
  if (!args.adql?.trim()) throw invalidArgument('ADQL', 'is required: constellation query "SELECT ..." (quote the query)');
  const input: Record<string, unknown> = { adql: args.adql, format: resultFormat(args.format, args.out) };
  if (args.site !== undefined) input.site = args.site;
  if (args.maxrec !== undefined) {
    const maxrec = Number(args.maxrec);
    if (!Number.isSafeInteger(maxrec) || maxrec < 0 || maxrec > 2_147_483_647) throw invalidArgument('--maxrec', `must be a whole number of rows from 0 to 2147483647, not "${args.maxrec}"`);
    input.maxrec = maxrec;
  }
  return input;
}

/** `constellation query "ADQL" [--out FILE] [--format csv|votable|json] [--site ID] [--maxrec N] [--json]`. */
export async function queryCommand(config: Config, args: QueryArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const input = queryInput(args);
  const format = input.format as string;
  // A result with nowhere to go is found out before the job runs, not after.
  if (args.out !== undefined) await checkOutDirectory(args.out);
  const broker = await brokerClient(config, env);
  const started = Date.now();
  const { submitQuery } = await broker.graphql<{ submitQuery: JobView }>(`mutation($i: QueryInput!) { submitQuery(input: $i) { ${JOB_VIEW} } }`, { i: input });
  const colour = palette(process.stderr, env);
  if (!args.json) process.stderr.write(`job ${submitQuery.id} submitted\n`);
  const job = await follow(broker, submitQuery, started, args.json === true, env);
  const results = job.results ? resultPath(broker, job.results, format) : null;
  if (job.state !== 'COMPLETED' || !results) {
    if (args.json) writeJson({ job: { ...job, results } });
    else process.stderr.write(`${colour.red(`job ${job.id} ended ${job.state}`)}${job.error ? `: ${printableInline(`${job.error.code}: ${job.error.message}`)}` : ''}\n`);
    return EXIT.FAILED;
  }
  if (args.json && !args.out) {
    // stdout holds the one JSON document: the result stays at the broker, at `results`.
    writeJson({ job: { ...job, results: `${broker.base}${results}` } });
    return EXIT.OK;
  }
  const download = await broker.download(results);
  const bytes = await writeResult(download.body, args.out);
  if (args.json) writeJson({ job: { ...job, results: `${broker.base}${results}` }, out: args.out, format, bytes });
  else if (args.out) process.stderr.write(`${colour.green(`job ${job.id} COMPLETED`)}${job.site ? ` at ${job.site.id}` : ''} in ${elapsed(started)}: ${formatBytes(bytes)} written to ${printableInline(args.out)}\n`);
  return EXIT.OK;
}

async function checkOutDirectory(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
    await access(dir, constants.W_OK);
  } catch (err) {
    throw invalidArgument('--out', `cannot be written: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The job's result route asking for `format` (the link the broker gave, with the format set). */
function resultPath(broker: BrokerClient, link: string, format: string): string {
  const url = new URL(link, broker.base);
  url.searchParams.set('format', format);
  return `${url.pathname}${url.search}`;
}

/** Poll the job until it ends, showing its state and the time waited; Ctrl-C asks the broker to cancel it. */
async function follow(broker: BrokerClient, first: JobView, started: number, quiet: boolean, env: NodeJS.ProcessEnv): Promise<JobView> {
  // Progress is for a person at a terminal; a pipe or a log gets the final line only.
  const progress = new ProgressLine({ quiet: quiet || process.stderr.isTTY !== true, env });
  let job = first;
  let interrupted = false;
  let wake = () => {};
  const onInterrupt = () => {
    interrupted = true;
    wake();
  };
  process.once('SIGINT', onInterrupt);
  try {
    for (let pause = 250; !FINAL.has(job.state); pause = Math.min(POLL_MAX_MS, pause * 1.5)) {
      progress.update(`${job.state}${job.site ? ` at ${job.site.id}` : ''}${job.unreachableSince ? ' (site not answering)' : ''}, ${elapsed(started)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (interrupted) {
        progress.done();
        if (!quiet) process.stderr.write(`cancelling job ${job.id}\n`);
        return (await broker.graphql<{ cancelJob: JobView }>(`mutation($id: ID!) { cancelJob(id: $id) { ${JOB_VIEW} } }`, { id: job.id })).cancelJob;
      }
      const { job: now } = await broker.graphql<{ job: JobView | null }>(`query($id: ID!) { job(id: $id) { ${JOB_VIEW} } }`, { id: job.id });
      if (now) job = now;
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    progress.done();
  }
  return job;
}
