/**
 * End-to-end overhead of a routed query: a 100,000-row ADQL query submitted to the broker
 * (GraphQL submitQuery, followed over the jobUpdated subscription, result read from
 * GET /results/:id) against the same query sent straight to the simulated TAP site, which runs
 * in its own process. Baseline, in the same run: the direct TAP async form (POST /async with
 * PHASE=RUN, UWS WAIT, GET the result), the form the broker itself uses for a result this
 * large; the direct sync form is printed beside it.
 *
 *   npx tsx bench/e2e-query.ts [--rows 100000] [--runs 10] [--fast-poll-interval-s 0.1]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readVOTable } from '../adapters/ivoa/votable/index.js';
import { buildApp } from '../broker/app.js';
import { parseConfig } from '../broker/config/load.js';
import { packagePath } from '../registry/paths.js';
import { freshDatabase } from '../test/support/database.js';
import { SubscriptionClient } from '../test/support/subscriptions.js';

export interface E2eBenchOptions {
  /** Rows the site holds; the query reads them all (default 100,000). */
  rows?: number;
  /** Measured runs of each form, after one warm-up of each (default 10). */
  runs?: number;
  /** jobs.pollIntervalS of the second broker, which shows what asking the site at once buys (default 0.1). */
  fastPollIntervalS?: number;
}

/** Median and p90 of one form's runs, in milliseconds, with per-phase medians. */
export interface FormStats {
  label: string;
  medianMs: number;
  p90Ms: number;
  /** this form's median / the direct async median. */
  ratio: number;
  phases: Record<string, number>;
  /** Median GETs of the site's UWS job document per routed job. */
  jobReads?: number;
}

export interface E2eBenchResult {
  rows: number;
  bytes: number;
  /** Result size each form got (the same unless the site wrote the routed query's VOTable differently). */
  bytesByForm: Record<'directSync' | 'directAsync' | 'routed' | 'routedFast', number>;
  runs: number;
  database: 'PostgreSQL' | 'embedded PGlite';
  forms: { directSync: FormStats; directAsync: FormStats; routed: FormStats; routedFast: FormStats };
  /** The same finished result read again and again: MB/s through GET /results/:id and straight from the site. */
  streaming: { brokerMBps: number; directMBps: number; brokerFirstByteMs: number; directFirstByteMs: number };
}

/** One timed run: total, result, and named phase durations (ms). */
interface Run {
  ms: number;
  body: Buffer;
  phases: Record<string, number>;
  /** GETs of the site's UWS job document (submit, polls, result lookup) for a routed run. */
  jobReads?: number;
}

const TERMINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

async function startSite(rows: number): Promise<{ url: string; table: string; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', packagePath('bench/sim-gaia.ts'), String(rows)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`simulated site exited with ${code}`)));
  });
  const { url, table } = JSON.parse(line) as { url: string; table: string };
  return { url, table, stop: () => child.stdin!.end() };
}

/** Follow a job over a kept-open subscription until it is final: its final state and when that arrived. */
async function follow(client: SubscriptionClient, jobId: string, timeoutMs: number): Promise<{ state: string; at: number }> {
  let final: { state: string; at: number } | undefined;
  await client.run<{ jobUpdated: { state: string } }>('subscription($id: ID!) { jobUpdated(id: $id) { state } }', { id: jobId }, timeoutMs, (data) => {
    if (TERMINAL.has(data.jobUpdated.state)) final = { state: data.jobUpdated.state, at: performance.now() };
  });
  if (!final) throw new Error(`job ${jobId} ended its subscription without a final state`);
  return final;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

function queryForm(adql: string, extra: Record<string, string> = {}): string {
  return new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: adql, ...extra }).toString();
}

/** Milliseconds on the performance clock of a UWS timestamp (ISO, ms precision, same machine). */
function siteTime(iso: string): number {
  return Date.parse(iso) - performance.timeOrigin;
}

function uwsField(xml: string, name: string): string | undefined {
  return new RegExp(`<uws:${name}>([^<]*)</uws:${name}>`).exec(xml)?.[1];
}

async function readAll(res: Response, what: string): Promise<Buffer> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
  return Buffer.from(await res.arrayBuffer());
}

async function directSync(site: string, adql: string): Promise<Run> {
  const t0 = performance.now();
  const res = await fetch(`${site}/sync`, { method: 'POST', headers: FORM, body: queryForm(adql) });
  const headers = performance.now();
  const body = await readAll(res, 'direct sync query');
  const end = performance.now();
  return { ms: end - t0, body, phases: { 'query at the site (to first byte)': headers - t0, 'result read': end - headers } };
}

async function directAsync(site: string, adql: string): Promise<Run> {
  const t0 = performance.now();
  const created = await fetch(`${site}/async`, { method: 'POST', headers: FORM, body: queryForm(adql, { PHASE: 'RUN' }), redirect: 'manual' });
  const jobUrl = created.headers.get('location');
  if (created.status !== 303 || !jobUrl) throw new Error(`direct async submission: HTTP ${created.status} without a job`);
  const submitted = performance.now();
  let job = '';
  let phase = '';
  while (!TERMINAL.has(phase)) {
    job = await (await fetch(`${jobUrl}?WAIT=30`)).text();
    phase = uwsField(job, 'phase') ?? '';
  }
  const noticed = performance.now();
  if (phase !== 'COMPLETED') throw new Error(`direct async job ended ${phase}`);
  const body = await readAll(await fetch(`${jobUrl}/results/result`), 'direct async result');
  const end = performance.now();
  const started = siteTime(uwsField(job, 'startTime')!);
  const ended = siteTime(uwsField(job, 'endTime')!);
  return {
    ms: end - t0,
    body,
    phases: { submit: submitted - t0, 'execution at the site': ended - started, 'COMPLETED seen after the site finished': noticed - ended, 'result read': end - noticed },
  };
}

interface Broker {
  url: string;
  pollIntervalS: number;
  subscriptions: SubscriptionClient;
  graphql<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

/** A listening broker on a database of its own, with the site in its federation YAML, harvested once. */
async function startBroker(siteUrl: string, pollIntervalS: number | undefined): Promise<Broker> {
  const db = await freshDatabase({ recordStatements: false });
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    const yaml = `federation: { name: e2e-bench }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 60 }
${pollIntervalS === undefined ? '' : `jobs: { pollIntervalS: ${pollIntervalS} }\n`}sites:
  - { id: sim, name: Simulated Gaia archive, adapter: tap, url: "${siteUrl}" }
`;
    const config = parseConfig(yaml, { LOG_LEVEL: 'error' });
    app = await buildApp(config, { database: db, logger: false });
    const run = await app.services.harvester.harvest('sim', 'bench');
    if (run.outcome !== 'OK') throw new Error(`harvest of the simulated site: ${run.outcome} ${run.errorMessage ?? ''}`);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const subscriptions = await SubscriptionClient.connect(url);
    const listening = app;
    return {
      url,
      pollIntervalS: config.jobs.pollIntervalS,
      subscriptions,
      async graphql<T>(query: string, variables?: Record<string, unknown>) {
        const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
        const out = (await res.json()) as { data?: T; errors?: unknown };
        if (out.errors) throw new Error(`GraphQL: ${JSON.stringify(out.errors)}`);
        return out.data!;
      },
      async close() {
        subscriptions.close();
        await listening.close();
        await db.close();
      },
    };
  } catch (err) {
    await app?.close();
    await db.close();
    throw err;
  }
}

/** Submit, follow over the subscription until COMPLETED, read the result: one routed run. */
async function routed(broker: Broker, adql: string): Promise<Run & { resultUrls: [string, string] }> {
  const t0 = performance.now();
  const { submitQuery } = await broker.graphql<{ submitQuery: { id: string; state: string } }>(
    'mutation($i: QueryInput!) { submitQuery(input: $i) { id state } }', { i: { adql } });
  const submitted = performance.now();
  const final = await follow(broker.subscriptions, submitQuery.id, 120_000);
  if (final.state !== 'COMPLETED') throw new Error(`routed job ${submitQuery.id} ended ${final.state}`);
  const res = await fetch(`${broker.url}/results/${submitQuery.id}`);
  const headers = performance.now();
  const body = await readAll(res, 'routed result');
  const end = performance.now();

  // Untimed: when the site created, ran and finished the job, and when the broker recorded it.
  const { job } = await broker.graphql<{ job: { siteJobId: string; plan: { candidates: { siteQuery: { mode: string } }[] }; history: { at: string; to: string }[] } }>(
    'query($id: ID!) { job(id: $id) { siteJobId plan { candidates { ... on QueryCandidate { siteQuery { mode } } } } history { at to } } }', { id: submitQuery.id });
  const mode = job.plan.candidates[0].siteQuery.mode;
  if (mode !== 'async') throw new Error(`the broker ran the query ${mode}, not async`);
  // Counted before this function reads the job document itself.
  const { reads } = (await (await fetch(new URL(`/bench/job-reads?path=${encodeURIComponent(new URL(job.siteJobId).pathname)}`, job.siteJobId))).json()) as { reads: number };
  const uws = await (await fetch(job.siteJobId)).text();
  const created = siteTime(uwsField(uws, 'creationTime')!);
  const started = siteTime(uwsField(uws, 'startTime')!);
  const ended = siteTime(uwsField(uws, 'endTime')!);
  const recorded = siteTime(job.history.find((h) => h.to === 'COMPLETED')!.at);
  return {
    ms: end - t0,
    body,
    jobReads: reads,
    resultUrls: [`${broker.url}/results/${submitQuery.id}`, `${job.siteJobId}/results/result`],
    phases: {
      'plan and create the job (to the site POST)': created - t0,
      'submit answered': submitted - t0,
      'execution at the site': ended - started,
      'COMPLETED recorded by the poller after the site finished': recorded - ended,
      'COMPLETED seen after the site finished': final.at - ended,
      'result first byte': headers - final.at,
      'result read': end - final.at,
    },
  };
}

/** One GET read to the end: time to the headers and to the last byte. */
async function timedRead(url: string): Promise<{ firstByteMs: number; bodyMs: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const headers = performance.now();
  const body = await readAll(res, url);
  return { firstByteMs: headers - t0, bodyMs: performance.now() - headers, bytes: body.length };
}

async function countRows(body: Buffer): Promise<number> {
  let rows = 0;
  for await (const ev of readVOTable(body)) if (ev.type === 'rows' && ev.table === 0) rows += ev.rows.length;
  return rows;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

type Measured = Omit<Run, 'body'>;

function stats(label: string, runs: Measured[], baselineMs?: number): FormStats {
  const totals = runs.map((r) => r.ms).sort((a, b) => a - b);
  const phases: Record<string, number> = {};
  for (const name of Object.keys(runs[0].phases)) phases[name] = median(runs.map((r) => r.phases[name]));
  const medianMs = median(totals);
  const out: FormStats = { label, medianMs, p90Ms: quantile(totals, 0.9), ratio: medianMs / (baselineMs ?? medianMs), phases };
  if (runs[0].jobReads !== undefined) out.jobReads = median(runs.map((r) => r.jobReads!));
  return out;
}

const MB = 2 ** 20;

/** Start the site and two brokers, warm up, then time `runs` rounds of the four forms in rotating order. */
export async function benchE2eQuery(options: E2eBenchOptions = {}): Promise<E2eBenchResult> {
  const rows = options.rows ?? 100_000;
  const runs = options.runs ?? 10;
  const progress = (m: string) => process.stderr.write(`  [e2e-query] ${m}\n`);
  progress(`starting the simulated site (${rows.toLocaleString('en-US')} rows)`);
  const site = await startSite(rows);
  const brokers: Broker[] = [];
  try {
    const tap = `${site.url}/tap`;
    const shipped = await startBroker(tap, undefined);
    brokers.push(shipped);
    const fast = await startBroker(tap, options.fastPollIntervalS ?? 0.1);
    brokers.push(fast);
    const adql = `SELECT * FROM ${site.table}`;
    let resultUrls: [string, string] | undefined;
    const forms = {
      directSync: () => directSync(tap, adql),
      directAsync: () => directAsync(tap, adql),
      routed: async () => {
        const r = await routed(shipped, adql);
        resultUrls = r.resultUrls;
        return r;
      },
      routedFast: () => routed(fast, adql),
    };
    const names = Object.keys(forms) as (keyof typeof forms)[];
    const measured: Record<keyof typeof forms, Measured[]> = { directSync: [], directAsync: [], routed: [], routedFast: [] };
    const bytes: Partial<Record<keyof typeof forms, number>> = {};
    for (let round = 0; round <= runs; round++) {
      progress(round === 0 ? 'warm-up' : `round ${round}/${runs}`);
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length];
        const { body, ...run } = await forms[name]();
        const counted = await countRows(body);
        // Every form must return every row the site holds, so routed and direct results agree.
        if (counted !== rows) throw new Error(`${name} returned ${counted} rows where the site holds ${rows}: routed and direct results differ`);
        bytes[name] = body.length;
        if (round > 0) measured[name].push(run);
      }
    }

    // The last routed result again, alternating with the site's copy: streaming alone, no job.
    progress('result streaming');
    const [viaBroker, direct] = resultUrls!;
    const reads: Record<'broker' | 'direct', Awaited<ReturnType<typeof timedRead>>[]> = { broker: [], direct: [] };
    for (let i = 0; i < runs; i++) {
      reads.broker.push(await timedRead(viaBroker));
      reads.direct.push(await timedRead(direct));
    }
    const mbps = (list: typeof reads.broker) => median(list.map((r) => r.bytes / MB / (r.bodyMs / 1000)));

    const baseline = stats('direct TAP async (POST /async, WAIT, result)', measured.directAsync);
    return {
      rows,
      bytes: bytes.directAsync!,
      bytesByForm: bytes as Record<keyof typeof forms, number>,
      runs,
      database: process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite',
      forms: {
        directSync: stats('direct TAP sync (POST /sync)', measured.directSync, baseline.medianMs),
        directAsync: baseline,
        routed: stats(`routed, jobs.pollIntervalS ${shipped.pollIntervalS} (shipped)`, measured.routed, baseline.medianMs),
        routedFast: stats(`routed, jobs.pollIntervalS ${fast.pollIntervalS}`, measured.routedFast, baseline.medianMs),
      },
      streaming: {
        brokerMBps: mbps(reads.broker),
        directMBps: mbps(reads.direct),
        brokerFirstByteMs: median(reads.broker.map((r) => r.firstByteMs)),
        directFirstByteMs: median(reads.direct.map((r) => r.firstByteMs)),
      },
    };
  } finally {
    for (const b of brokers.reverse()) await b.close();
    site.stop();
  }
}

/** Print one result the way the bench runner does. */
export function printE2eQuery(r: E2eBenchResult): void {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const { directSync, directAsync, routed, routedFast } = r.forms;
  const sizes = new Set(Object.values(r.bytesByForm));
  const size = sizes.size === 1 ? `${r.bytes.toLocaleString('en-US')} bytes of BINARY2 VOTable from every form` : `VOTable bytes ${JSON.stringify(r.bytesByForm)}`;
  console.log(`e2e query: SELECT * of ${r.rows.toLocaleString('en-US')} rows (${size}), ${r.runs} runs of each after a warm-up, broker on ${r.database}`);
  for (const f of [directSync, directAsync, routed, routedFast]) {
    const tail = f === directAsync ? '(baseline 1.00)' : `ratio ${f.ratio.toFixed(2)}${f === routed ? ' (target < 1.1)' : ''}`;
    console.log(`  ${f.label.padEnd(46)} median ${s(f.medianMs).padStart(7)}  p90 ${s(f.p90Ms).padStart(7)}  ${tail}`);
  }
  console.log('  phase medians, ms (routed jobs are followed over the jobUpdated subscription):');
  for (const f of [directAsync, routed, routedFast]) {
    const reads = f.jobReads === undefined ? '' : `; site job document read ${f.jobReads} times`;
    console.log(`    ${f.label}: ${Object.entries(f.phases).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; ')}${reads}`);
  }
  const st = r.streaming;
  console.log(`  the finished result re-read ${r.runs} times: GET /results/:id ${st.brokerMBps.toFixed(0)} MB/s (first byte ${st.brokerFirstByteMs.toFixed(0)} ms), ` +
    `the site's result URL ${st.directMBps.toFixed(0)} MB/s (first byte ${st.directFirstByteMs.toFixed(0)} ms), ratio ${(st.brokerMBps / st.directMBps).toFixed(2)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : Number(process.argv[i + 1]);
  };
  printE2eQuery(await benchE2eQuery({ rows: arg('--rows'), runs: arg('--runs'), fastPollIntervalS: arg('--fast-poll-interval-s') }));
}
