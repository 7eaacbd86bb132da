/**
 * `constellation crossmatch` and `constellation thread ID`: a cross-match thread through the
 * running broker's GraphQL API, with a live progress line on a terminal (plain lines otherwise),
 * the result streamed to a file or stdout. A logged-in user's token goes with every request.
 */
import { createWriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { Config } from '../config/config.js';
import { brokerClient } from './broker-client.js';
import { writeJson } from './output.js';
import { printableInline } from './terminal.js';

/** What `constellation crossmatch` was given. */
export interface CrossmatchArgs {
  left?: string;
  right?: string;
  cone?: string;
  radius?: string;
  mode?: string;
  strategy?: string;
  out?: string;
  format?: string;
  json?: boolean;
}

interface ThreadLine {
  id: string;
  state: string;
  results: string | null;
  resultRows: number | null;
  error: { code: string; message: string } | null;
  progress: { stepsDone: number; stepsTotal: number; rows: number; bytes: number };
  plan: { candidates: { strategy: string; chosen: boolean; eligible: boolean; leftSite: string | null; rightSite: string | null; estimatedBytesMoved: number; steps: number }[] } | null;
  steps: { ordinal: number; kind: string; site: string | null; state: string; rowsOut: number | null; bytesIn: number | null }[];
}

const THREAD = `id state results resultRows error { code message } progress { stepsDone stepsTotal rows bytes }
  plan { candidates { strategy chosen eligible leftSite rightSite estimatedBytesMoved steps } }
  steps { ordinal kind site state rowsOut bytesIn }`;

/** The broker's GraphQL for this user (the shared broker client: coded errors, exit 3 when no broker answers). */
async function client(config: Config, env: NodeJS.ProcessEnv): Promise<<T>(query: string, variables?: Record<string, unknown>) => Promise<T>> {
  const broker = await brokerClient(config, env);
  return <T>(query: string, variables: Record<string, unknown> = {}) => broker.graphql<T>(query, variables);
}

/** The input of the crossmatch mutation from the command's arguments; INVALID_ARGUMENT naming the option otherwise. */
export function crossmatchInput(args: CrossmatchArgs): Record<string, unknown> {
  if (!args.left) throw invalidArgument('--left', 'is required: the canonical id of the left dataset (e.g. gaia_dr3.gaia_source)');
  if (!args.right) throw invalidArgument('--right', 'is required: the canonical id of the right dataset (e.g. ps1_dr2.mean_object)');
  const cone = (args.cone ?? '').split(',').map(Number);
  if (cone.length !== 3 || cone.some((x) => !Number.isFinite(x))) throw invalidArgument('--cone', 'must be RA,DEC,RADIUS in degrees (e.g. 180,0,0.5)');
  const radius = Number(args.radius ?? 1);
  if (!Number.isFinite(radius)) throw invalidArgument('--radius', 'must be a number of arcseconds');
  const mode = (args.mode ?? 'best').toUpperCase();
  if (mode !== 'BEST' && mode !== 'ALL') throw invalidArgument('--mode', 'must be best or all');
  return {
    left: { dataset: args.left },
    right: { dataset: args.right },
    region: { cone: { ra: cone[0], dec: cone[1], radiusDeg: cone[2] } },
    radiusArcsec: radius,
    mode,
    ...(args.strategy ? { strategy: args.strategy.toUpperCase().replace('-', '_') } : {}),
  };
}

/** `constellation crossmatch …`: start the thread, follow it, write its result. */
export async function crossmatchCommand(config: Config, args: CrossmatchArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const input = crossmatchInput(args);
  const format = (args.format ?? (args.out?.endsWith('.vot') || args.out?.endsWith('.xml') ? 'votable' : args.out?.endsWith('.json') ? 'json' : 'csv')).toLowerCase();
  if (!['csv', 'votable', 'json'].includes(format)) throw invalidArgument('--format', 'must be csv, votable or json');
  const ask = await client(config, env);
  const started = Date.now();
  const { crossmatch } = await ask<{ crossmatch: ThreadLine }>(`mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD} } }`, { i: input });
  const tty = process.stderr.isTTY === true && !args.json;
  if (!args.json) {
    process.stderr.write(`thread ${crossmatch.id}\n`);
    for (const c of crossmatch.plan?.candidates ?? []) {
      process.stderr.write(`  ${c.chosen ? '→' : ' '} ${c.strategy.padEnd(9)} ${[c.leftSite, c.rightSite].filter(Boolean).join(' + ').padEnd(30)} ${c.eligible ? `${bytes(c.estimatedBytesMoved)} moved, ${c.steps} steps` : 'not eligible'}\n`);
    }
  }
  let last = '';
  let thread = crossmatch;
  while (!['COMPLETED', 'ERROR', 'ABORTED'].includes(thread.state)) {
    await new Promise((r) => setTimeout(r, 500));
    thread = (await ask<{ thread: ThreadLine }>(`query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id: crossmatch.id })).thread;
    const line = `${thread.state} ${thread.progress.stepsDone}/${thread.progress.stepsTotal} steps, ${thread.progress.rows.toLocaleString('en')} rows, ${bytes(thread.progress.bytes)}, ${((Date.now() - started) / 1000).toFixed(1)} s`;
    if (args.json || line === last) continue;
    // A terminal gets one line rewritten in place; a pipe or a log gets a line per change.
    process.stderr.write(tty ? `\r\u001b[2K${line}` : `${line}\n`);
    last = line;
  }
  if (tty) process.stderr.write('\n');
  if (args.json) writeJson(thread);
  if (thread.state !== 'COMPLETED' || !thread.results) {
    process.stderr.write(`constellation: thread ${thread.id} ended ${thread.state}${thread.error ? `: ${thread.error.code}: ${printableInline(thread.error.message)}` : ''}\n`);
    return 1;
  }
  if (args.json && !args.out) return 0;
  const result = await (await brokerClient(config, env)).download(`${thread.results}${thread.results.includes('?') ? '&' : '?'}format=${format}`);
  await pipeline(result.body, args.out ? createWriteStream(args.out) : stdoutKeptOpen());
  if (args.out && !args.json) process.stderr.write(`${(thread.resultRows ?? 0).toLocaleString('en')} pairs written to ${args.out}\n`);
  return 0;
}

/** `constellation thread ID`: the thread's state, plan, steps and progress. */
export async function threadCommand(config: Config, id: string | undefined, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (!id) throw invalidArgument('ID', 'is required: constellation thread <thread id>');
  const { thread } = await (await client(config, env))<{ thread: ThreadLine | null }>(`query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id });
  if (!thread) throw new ConstellationError('NOT_FOUND', `no thread ${id} of yours`);
  if (json) {
    writeJson(thread);
    return 0;
  }
  process.stdout.write(`thread ${thread.id}: ${thread.state}, ${thread.progress.stepsDone}/${thread.progress.stepsTotal} steps, ${thread.progress.rows.toLocaleString('en')} rows, ${bytes(thread.progress.bytes)} moved${thread.resultRows === null ? '' : `, ${thread.resultRows.toLocaleString('en')} pairs`}\n`);
  if (thread.error) process.stdout.write(`  ${thread.error.code}: ${printableInline(thread.error.message)}\n`);
  for (const s of thread.steps) process.stdout.write(`  step ${s.ordinal} ${s.kind.padEnd(12)} ${(s.site ?? 'broker').padEnd(16)} ${s.state.padEnd(9)} ${s.rowsOut ?? '-'} rows\n`);
  return 0;
}

/** stdout as a pipeline's end, without closing it. */
function stdoutKeptOpen(): Writable {
  return new Writable({ write: (chunk, _encoding, done) => void process.stdout.write(chunk, done) });
}

function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${Math.round(n)} B`;
}
