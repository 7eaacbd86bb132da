/**
 * A large result through the broker: a 1,000,000-row Gaia-like VOTable (long, double, float,
 * int, short and char columns, some NULLs) held by a simulated TAP site in its own process,
 * read straight from the site, through the broker (in another process) as VOTable pass-through
 * and as CSV and JSON, and converted by STILTS `tcopy` from the same file, in one run: 3
 * interleaved rounds (after a checked warm-up), min and median, each form as a ratio. Beside
 * each broker form, the CPU time the broker process spent on it; beside STILTS, its user+system
 * CPU time (it is multi-threaded); the load average before and after.
 *
 *   npx tsx bench/results.ts [--rows 1000000] [--runs 3] [--serialization BINARY2|TABLEDATA] [--profile] [--keep]
 *
 * With --profile the broker is profiled (node:inspector) for one read of each broker form, and
 * the functions it spent most time in are printed per form.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { readVOTable, writeVOTable, type Row, type WritableTable } from '../adapters/ivoa/votable/index.js';
import { seededRandom } from '../test/support/random.js';

const TABLE_NAME = 'gaiadr3.gaia_source';

/** The result table: Gaia DR3-like columns of every common datatype, with NULLs where Gaia has them. */
export const RESULT_TABLE: WritableTable = {
  name: 'gaia_source',
  fields: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'parallax', datatype: 'double', unit: 'mas', ucd: 'pos.parallax' },
    { name: 'pmra', datatype: 'double', unit: 'mas/yr', ucd: 'pos.pm;pos.eq.ra' },
    { name: 'pmdec', datatype: 'double', unit: 'mas/yr', ucd: 'pos.pm;pos.eq.dec' },
    { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.G' },
    { name: 'bp_rp', datatype: 'float', unit: 'mag', ucd: 'phot.color' },
    { name: 'radial_velocity', datatype: 'float', unit: 'km/s', ucd: 'spect.dopplerVeloc.opt' },
    { name: 'phot_g_n_obs', datatype: 'int', ucd: 'meta.number' },
    { name: 'visibility_periods_used', datatype: 'short', ucd: 'meta.number' },
    { name: 'designation', datatype: 'char', arraysize: '*', ucd: 'meta.id' },
    { name: 'phot_variable_flag', datatype: 'char', arraysize: '*', ucd: 'meta.code' },
  ],
};

/** Deterministic rows: a fifth without astrometry, 5 % without colour, 90 % without radial velocity, 10 % without visibility periods. */
export function* resultRows(n: number, seed = 7): Generator<Row> {
  const r = seededRandom(seed);
  for (let i = 0; i < n; i++) {
    const sourceId = (BigInt(Math.floor(r() * 2 ** 30)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
    const astrometry = r() > 0.2;
    yield [
      sourceId,
      r() * 360,
      r() * 180 - 90,
      astrometry ? r() * 10 - 1 : null,
      astrometry ? r() * 40 - 20 : null,
      astrometry ? r() * 40 - 20 : null,
      Math.fround(3 + r() * 18),
      r() > 0.05 ? Math.fround(r() * 4 - 0.5) : null,
      r() > 0.9 ? Math.fround(r() * 200 - 100) : null,
      Math.floor(r() * 1000),
      r() > 0.1 ? Math.floor(r() * 40) : null,
      `Gaia DR3 ${sourceId}`,
      r() > 0.9 ? 'VARIABLE' : 'NOT_AVAILABLE',
    ];
  }
}

/** Options of `benchResults`. */
export interface BenchResultsOptions {
  rows?: number;
  /** Timed rounds after the warm-up (default 3). */
  runs?: number;
  /** How the site writes the result (default BINARY2, as most archives do). */
  serialization?: 'BINARY2' | 'TABLEDATA';
  /** Profile the broker for one read of each broker form. */
  profile?: boolean;
  keep?: boolean;
  log?: (line: string) => void;
}

/** The forms timed each round. */
export const FORMS = ['direct', 'resultsVotable', 'resultsCsv', 'resultsJson', 'directSync', 'tapSyncVotable', 'tapSyncCsv', 'stiltsCsv'] as const;
export type Form = (typeof FORMS)[number];

const LABELS: Record<Form, string> = {
  direct: "site's result URL (GET)",
  resultsVotable: 'broker GET /results/:id (VOTable)',
  resultsCsv: 'broker GET /results/:id?format=csv',
  resultsJson: 'broker GET /results/:id?format=json',
  directSync: "site's POST /tap/sync",
  tapSyncVotable: 'broker POST /tap/sync (VOTable)',
  tapSyncCsv: 'broker POST /tap/sync RESPONSEFORMAT=csv',
  stiltsCsv: 'STILTS tcopy ofmt=csv (file to file)',
};

/** One form's timings. */
export interface FormTimes {
  label: string;
  ms: number[];
  minMs: number;
  medianMs: number;
  bytes: number;
  /** Median CPU time of the process doing the work: the broker for broker forms, STILTS (user+system) for STILTS; none for the site. */
  cpuMedianMs?: number;
  /** Broker forms: the median over rounds of the longest event-loop delay while the form ran. */
  blockMedianMs?: number;
  /**
   * HTTP forms: time from the request to the answer's first body byte, per round (the rest of
   * `ms` is the streaming): what a broker adds before the first byte (its database read, the
   * site's job document, the checks) against what it adds per byte.
   */
  firstByteMs?: number[];
}

/** A ratio as min over min and median over median. */
export interface Ratio {
  label: string;
  min: number;
  median: number;
  target: string;
}

/** What `benchResults` measured. */
export interface BenchResultsResult {
  rows: number;
  runs: number;
  serialization: string;
  fileBytes: number;
  database: string;
  stiltsStartupMs: number;
  forms: Record<Form, FormTimes>;
  ratios: Ratio[];
  /** 1-minute load average before and after the timed rounds (2 cores). */
  load: [number, number];
  profile?: string[];
}

/** GET or POST `url`, reading the body to its end; `check` sees every chunk (warm-up only). The first body byte's time is from the request. */
function fetchBody(url: string, form?: URLSearchParams, check?: (chunk: Buffer) => void): Promise<{ bytes: number; status: number; firstByteMs: number }> {
  return new Promise((resolve, reject) => {
    const body = form?.toString();
    const asked = performance.now();
    let firstByteMs = Number.NaN;
    const req = httpRequest(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let bytes = 0;
      let excerpt = '';
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) firstByteMs = performance.now() - asked;
        bytes += chunk.length;
        if (res.statusCode !== 200 && excerpt.length < 500) excerpt += chunk.toString('utf8', 0, 500);
        else check?.(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode} ${excerpt}`));
        else resolve({ bytes, status: res.statusCode, firstByteMs });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}${stderr ? `\n${stderr}` : ''}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `stilts tcopy` under /usr/bin/time: its CPU time (user + system, ms). */
async function stilts(input: string, output: string): Promise<number> {
  const { stderr } = await run('/usr/bin/time', ['-f', 'cpu %U %S', 'stilts', 'tcopy', `in=${input}`, 'ifmt=votable', `out=${output}`, 'ofmt=csv']);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
  if (!m) throw new Error(`no CPU time from /usr/bin/time: ${stderr.slice(-300)}`);
  return (Number(m[1]) + Number(m[2])) * 1000;
}

/** A child process of this file, speaking JSON lines: one when ready, then one per command. */
interface Child<T> {
  info: T;
  proc: ChildProcess;
  /** Send a command line, wait for its one-line JSON answer. */
  ask<R>(command: string): Promise<R>;
}

/** Start this file as a child in `role`; resolves once it prints its ready line. */
async function child<T>(role: string, args: string[], nodeFlags: string[] = []): Promise<Child<T>> {
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', fileURLToPath(import.meta.url), role, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_resolve, reject) => proc.once('exit', (code) => reject(new Error(`the ${role} process exited (${code})`))));
  exited.catch(() => undefined);
  const next = async (): Promise<string> => {
    const line = await Promise.race([lines.next(), exited]);
    if (line.done) throw new Error(`the ${role} process closed its output`);
    return line.value;
  };
  const info = JSON.parse(await next()) as T;
  return {
    info,
    proc,
    async ask<R>(command: string): Promise<R> {
      proc.stdin!.write(`${command}\n`);
      return JSON.parse(await next()) as R;
    },
  };
}

/** Ask a child to stop (its stdin closes) and wait for it to exit. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.stdin!.end();
  await exited;
}

interface BrokerInfo {
  url: string;
  database: string;
}

/** Submit SELECT * through GraphQL and wait for COMPLETED; the broker's job id and the site's result URL. */
async function completedJob(broker: string, log: (line: string) => void): Promise<{ id: string; siteResult: string }> {
  const gql = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
    const res = await fetch(`${broker}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const out = (await res.json()) as { data?: T; errors?: unknown };
    if (out.errors || !out.data) throw new Error(`GraphQL: ${JSON.stringify(out.errors)}`);
    return out.data;
  };
  const { submitQuery } = await gql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', { i: { adql: `SELECT * FROM ${TABLE_NAME}` } });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { job } = await gql<{ job: { state: string; siteJobId: string | null; error: { message: string } | null; plan: { candidates: { siteQuery: { mode: string } }[] } } }>(
      'query($id: ID!) { job(id: $id) { state siteJobId error { message } plan { candidates { ... on QueryCandidate { siteQuery { mode } } } } } }',
      { id: submitQuery.id },
    );
    if (job.state === 'COMPLETED') {
      const mode = job.plan.candidates[0].siteQuery.mode;
      // An async job's result is streamed from the site on every read; a sync one would be read from the database.
      if (mode !== 'async') throw new Error(`the broker ran the query ${mode}, not async`);
      log(`job ${submitQuery.id} COMPLETED at the site as ${job.siteJobId}`);
      return { id: submitQuery.id, siteResult: `${job.siteJobId}/results/result` };
    }
    if (job.state === 'ERROR' || job.state === 'ABORTED') throw new Error(`job ${submitQuery.id} ended ${job.state}: ${job.error?.message ?? ''}`);
    if (Date.now() > deadline) throw new Error(`job ${submitQuery.id} still ${job.state} after 120 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Counts rows in a VOTable, CSV or JSON answer as its chunks arrive (the warm-up checks every form). */
function rowCounter(kind: 'votable' | 'csv' | 'json'): { check: (chunk: Buffer) => void; rows: () => Promise<number> } {
  if (kind === 'votable') {
    const chunks: Buffer[] = [];
    return {
      check: (c) => chunks.push(c),
      rows: async () => {
        let n = 0;
        for await (const ev of readVOTable(chunks)) if (ev.type === 'rows' && ev.table === 0) n += ev.rows.length;
        chunks.length = 0;
        return n;
      },
    };
  }
  // Neither file has a newline inside a value: one line per row, plus the header (CSV) or the head and tail (JSON).
  let lines = 0;
  return {
    check: (c) => {
      for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) lines++;
    },
    rows: async () => lines - (kind === 'csv' ? 1 : 2),
  };
}

/** Summarise a .cpuprofile: the functions with the most self time. */
async function profileSummary(file: string, title: string, top = 16): Promise<string[]> {
  const p = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const f = byId.get(p.samples[i])!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-3).join('/')}`;
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  // `dispatch` with no source is the inspector answering the profiler's own start and stop.
  const busy = [...self].filter(([k]) => !k.startsWith('(idle)') && k !== 'dispatch ');
  const total = busy.reduce((a, [, v]) => a + v, 0);
  const out = [`${title}: ${(total / 1e6).toFixed(2)} s on the broker's main thread`];
  for (const [k, v] of busy.sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${(v / 1e3).toFixed(0).padStart(6)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  return out;
}

/** Run the bench (see the file comment). */
export async function benchResults(options: BenchResultsOptions = {}): Promise<BenchResultsResult> {
  const rows = options.rows ?? 1_000_000;
  const runs = options.runs ?? 3;
  const serialization = options.serialization ?? 'BINARY2';
  const log = options.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'results-bench-'));
  const children: ChildProcess[] = [];
  try {
    const file = join(dir, `result-${serialization.toLowerCase()}.vot`);
    await pipeline(Readable.from(writeVOTable(RESULT_TABLE, resultRows(rows), { serialization, infos: [{ name: 'QUERY_STATUS', value: 'OK' }] })), createWriteStream(file));
    const fileBytes = (await stat(file)).size;
    log(`wrote ${rows.toLocaleString('en-US')} rows as ${serialization}: ${(fileBytes / 1e6).toFixed(1)} MB`);

    const site = await child<{ url: string }>('--site', [file, String(rows)]);
    children.push(site.proc);
    const tap = `${site.info.url}/tap`;
    const broker = await child<BrokerInfo>('--broker', [tap]);
    children.push(broker.proc);
    log(`site ${tap}, broker ${broker.info.url} (${broker.info.database})`);
    const job = await completedJob(broker.info.url, log);

    const query = (extra: Record<string, string> = {}) => new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT * FROM ${TABLE_NAME}`, MAXREC: String(rows), ...extra });
    const stiltsOut = join(dir, 'stilts.csv');
    /** Each form: bytes it gave, and the CPU time of the process that did the work (undefined for the site). */
    type Outcome = { bytes: number; cpuMs?: number; blockMs?: number; firstByteMs?: number };
    const viaBroker = async (url: string, form: URLSearchParams | undefined, check?: (c: Buffer) => void): Promise<Outcome> => {
      const before = await broker.ask<{ ms: number }>('cpu');
      const { bytes, firstByteMs } = await fetchBody(url, form, check);
      const after = await broker.ask<{ ms: number; maxDelayMs: number }>('cpu');
      return { bytes, cpuMs: after.ms - before.ms, blockMs: after.maxDelayMs, firstByteMs };
    };
    const forms: Record<Form, (check?: (c: Buffer) => void) => Promise<Outcome>> = {
      direct: async (check) => fetchBody(job.siteResult, undefined, check),
      resultsVotable: (check) => viaBroker(`${broker.info.url}/results/${job.id}`, undefined, check),
      resultsCsv: (check) => viaBroker(`${broker.info.url}/results/${job.id}?format=csv`, undefined, check),
      resultsJson: (check) => viaBroker(`${broker.info.url}/results/${job.id}?format=json`, undefined, check),
      directSync: async (check) => fetchBody(`${tap}/sync`, query(), check),
      tapSyncVotable: (check) => viaBroker(`${broker.info.url}/tap/sync`, query(), check),
      tapSyncCsv: (check) => viaBroker(`${broker.info.url}/tap/sync`, query({ RESPONSEFORMAT: 'csv' }), check),
      stiltsCsv: async (check) => {
        const cpuMs = await stilts(file, stiltsOut);
        if (check) check(await readFile(stiltsOut));
        return { bytes: (await stat(stiltsOut)).size, cpuMs };
      },
    };
    const kindOf = (f: Form): 'votable' | 'csv' | 'json' => (f === 'resultsJson' ? 'json' : /Csv$/.test(f) ? 'csv' : 'votable');

    // STILTS's own start-up, for reading its figure: the same copy of a one-row file.
    const tiny = join(dir, 'tiny.vot');
    await pipeline(Readable.from(writeVOTable(RESULT_TABLE, resultRows(1), { serialization })), createWriteStream(tiny));
    let t0 = performance.now();
    await stilts(tiny, join(dir, 'tiny.csv'));
    const stiltsStartupMs = performance.now() - t0;

    log('warm-up (every answer checked for its row count)');
    const bytes = {} as Record<Form, number>;
    for (const f of FORMS) {
      const counter = rowCounter(kindOf(f));
      bytes[f] = (await forms[f](counter.check)).bytes;
      const counted = await counter.rows();
      if (counted !== rows) throw new Error(`${LABELS[f]} gave ${counted} rows, the table has ${rows}`);
    }
    const times = Object.fromEntries(FORMS.map((f) => [f, [] as number[]])) as Record<Form, number[]>;
    const cpu = Object.fromEntries(FORMS.map((f) => [f, [] as number[]])) as Record<Form, number[]>;
    const block = Object.fromEntries(FORMS.map((f) => [f, [] as number[]])) as Record<Form, number[]>;
    const firstByte = Object.fromEntries(FORMS.map((f) => [f, [] as number[]])) as Record<Form, number[]>;
    const loadBefore = loadavg()[0];
    for (let round = 0; round < runs; round++) {
      log(`round ${round + 1}/${runs} (load average ${loadavg()[0].toFixed(1)})`);
      // The order rotates each round, so no form always runs on a warmer or busier machine.
      for (let k = 0; k < FORMS.length; k++) {
        const f = FORMS[(k + round) % FORMS.length];
        t0 = performance.now();
        const outcome = await forms[f]();
        times[f].push(performance.now() - t0);
        bytes[f] = outcome.bytes;
        if (outcome.cpuMs !== undefined) cpu[f].push(outcome.cpuMs);
        if (outcome.blockMs !== undefined) block[f].push(outcome.blockMs);
        if (outcome.firstByteMs !== undefined) firstByte[f].push(outcome.firstByteMs);
      }
    }
    const load: [number, number] = [loadBefore, loadavg()[0]];
    const stats = Object.fromEntries(
      FORMS.map((f) => [f, {
        label: LABELS[f],
        ms: times[f],
        minMs: Math.min(...times[f]),
        medianMs: median(times[f]),
        bytes: bytes[f],
        ...(cpu[f].length > 0 ? { cpuMedianMs: median(cpu[f]) } : {}),
        ...(block[f].length > 0 ? { blockMedianMs: median(block[f]) } : {}),
        ...(firstByte[f].length > 0 ? { firstByteMs: firstByte[f] } : {}),
      }]),
    ) as Record<Form, FormTimes>;
    const over = (a: Form, b: Form, target: string): Ratio => ({ label: `${LABELS[a]} / ${LABELS[b]}`, min: stats[a].minMs / stats[b].minMs, median: stats[a].medianMs / stats[b].medianMs, target });
    const speed = (a: Form, target: string): Ratio => ({ label: `STILTS csv time / ${LABELS[a]}`, min: stats.stiltsCsv.minMs / stats[a].minMs, median: stats.stiltsCsv.medianMs / stats[a].medianMs, target });
    const ratios = [
      over('resultsVotable', 'direct', '<= 1.1'),
      over('tapSyncVotable', 'directSync', '<= 1.1'),
      over('resultsCsv', 'direct', 'info'),
      over('resultsJson', 'direct', 'info'),
      speed('resultsCsv', '>= 3'),
      speed('resultsJson', '>= 3; STILTS writes no JSON, so against its CSV'),
      speed('tapSyncCsv', '>= 3'),
    ];

    let profile: string[] | undefined;
    if (options.profile) {
      const profDir = join(dir, 'profile');
      await mkdir(profDir);
      profile = [];
      for (const [suffix, title] of [['', 'pass-through'], ['?format=csv', 'CSV'], ['?format=json', 'JSON']]) {
        const out = join(profDir, `${title}.cpuprofile`);
        await broker.ask('profile-start');
        await fetchBody(`${broker.info.url}/results/${job.id}${suffix}`);
        await broker.ask(`profile-stop ${out}`);
        profile.push(...(await profileSummary(out, `GET /results/:id${suffix} (${title})`)));
      }
    }
    return { rows, runs, serialization, fileBytes, database: broker.info.database, stiltsStartupMs, forms: stats, ratios, load, ...(profile ? { profile } : {}) };
  } finally {
    for (const c of children.reverse()) await stopChild(c);
    if (options.keep !== true) await rm(dir, { recursive: true, force: true });
    else log(`files kept in ${dir}`);
  }
}

/** Print one result. */
export function printResults(r: BenchResultsResult): void {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`results: ${r.rows.toLocaleString('en-US')} rows, ${(r.fileBytes / 1e6).toFixed(1)} MB ${r.serialization} VOTable, ${r.runs} interleaved rounds after a checked warm-up, broker on ${r.database}, load average ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)}`);
  for (const f of FORMS) {
    const t = r.forms[f];
    const first = t.firstByteMs === undefined ? '' : `  first byte ${Math.min(...t.firstByteMs).toFixed(0)} / ${median(t.firstByteMs).toFixed(0)} ms`;
    const cpu = first + (t.cpuMedianMs === undefined ? '' : `  cpu ${s(t.cpuMedianMs)}`) + (t.blockMedianMs === undefined ? '' : `  loop blocked ≤ ${t.blockMedianMs.toFixed(0)} ms`);
    console.log(`  ${t.label.padEnd(44)} min ${s(t.minMs).padStart(7)}  median ${s(t.medianMs).padStart(7)}  ${(t.bytes / 1e6).toFixed(1).padStart(6)} MB  [${t.ms.map((m) => (m / 1000).toFixed(2)).join(', ')}]${cpu}`);
  }
  console.log(`  (STILTS start-up alone, a one-row file: ${s(r.stiltsStartupMs)})`);
  // Where a pass-through's extra time goes: before the first byte, or while streaming (medians).
  for (const [through, direct] of [['resultsVotable', 'direct'], ['tapSyncVotable', 'directSync']] as const) {
    const a = r.forms[through];
    const b = r.forms[direct];
    if (a.firstByteMs === undefined || b.firstByteMs === undefined) continue;
    const first = median(a.firstByteMs) - median(b.firstByteMs);
    const streaming = a.medianMs - median(a.firstByteMs) - (b.medianMs - median(b.firstByteMs));
    console.log(`  ${a.label} over ${b.label}: ${first >= 0 ? '+' : ''}${first.toFixed(0)} ms to the first byte, ${streaming >= 0 ? '+' : ''}${streaming.toFixed(0)} ms streaming (medians)`);
  }
  for (const x of r.ratios) console.log(`  ${x.label.padEnd(86)} min ${x.min.toFixed(2)}  median ${x.median.toFixed(2)}  (target ${x.target})`);
  if (r.profile) {
    console.log('  broker CPU profile (self time):');
    for (const line of r.profile) console.log(`    ${line}`);
  }
}

/** The site child: a simulated TAP service whose every query result is the prepared file. */
async function serveSite(file: string, rows: number): Promise<void> {
  const { SimSite } = await import('../test/sites/sim-site.js');
  const { mountTapService } = await import('../test/sites/tap-service.js');
  const site = new SimSite();
  const svc = mountTapService(site, {
    path: '/tap',
    // A few rows held, the whole table advertised: the planner sends SELECT * as an async job.
    tables: [{ name: TABLE_NAME, rows, heldRows: 10, position: { ra: 'ra', dec: 'dec' }, columns: [
      { name: 'source_id', datatype: 'long' }, { name: 'ra', datatype: 'double' }, { name: 'dec', datatype: 'double' },
      { name: 'parallax', datatype: 'double' }, { name: 'pmra', datatype: 'double' }, { name: 'pmdec', datatype: 'double' },
      { name: 'phot_g_mean_mag', datatype: 'float' }, { name: 'bp_rp', datatype: 'float' }, { name: 'radial_velocity', datatype: 'float' },
      { name: 'phot_g_n_obs', datatype: 'int' }, { name: 'visibility_periods_used', datatype: 'short' },
      { name: 'designation', datatype: 'char' }, { name: 'phot_variable_flag', datatype: 'char' },
    ] }],
    hardMaxRec: 10_000_000,
  });
  // Every answer (sync or async) is the same prepared VOTable, so each form moves the bytes STILTS converts.
  const body = await readFile(file, 'utf8');
  svc.hostile.result = () => body;
  await site.start();
  process.stdout.write(JSON.stringify({ url: site.url }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void svc.close().then(() => site.close()).finally(() => process.exit(0)));
}

/** The broker child: the site in its federation, harvested, listening; answers commands on stdin, exits when it closes. */
async function serveBroker(tap: string): Promise<void> {
  const { buildApp } = await import('../broker/app.js');
  const { parseConfig } = await import('../broker/config/load.js');
  const { freshDatabase } = await import('../test/support/database.js');
  const db = await freshDatabase({ recordStatements: false });
  // A first byte may take longer than the default 15 s on a 2-core machine loaded by other benches (it did, at load 16).
  const config = parseConfig(`federation: { name: results-bench }\nharvest: { concurrency: 1, jitterS: 0, timeoutS: 60 }\nresults: { firstByteTimeoutS: 120 }\nsites:\n  - { id: sim, name: Simulated Gaia archive, adapter: tap, url: "${tap}" }\n`, { LOG_LEVEL: 'error' });
  const app = await buildApp(config, { database: db, logger: false });
  const run = await app.services.harvester.harvest('sim', 'bench');
  if (run.outcome !== 'OK') throw new Error(`harvest of the simulated site: ${run.outcome} ${run.errorMessage ?? ''}`);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  // As `constellation serve` does: the CSV/JSON conversion threads started before the first result.
  const { startTextThreads } = await import('../broker/jobs/text-threads.js');
  await startTextThreads();
  process.stdout.write(JSON.stringify({ url, database: process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite' }) + '\n');
  // Commands: `cpu` (CPU time used so far, and the longest event-loop delay since the last
  // `cpu`), `profile-start`, `profile-stop <file>`.
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  const reply = (value: unknown) => process.stdout.write(JSON.stringify(value) + '\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, file] = line.split(' ');
    if (command === 'cpu') {
      const { user, system } = process.cpuUsage();
      reply({ ms: (user + system) / 1000, maxDelayMs: delay.max / 1e6 });
      delay.reset();
    } else if (command === 'profile-start') {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      reply({ ok: true });
    } else if (command === 'profile-stop') {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
      reply({ ok: true });
    } else {
      reply({ error: `unknown command ${command}` });
    }
  }
  await app.close();
  await db.close();
  process.exit(0);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv[2] === '--site') {
  await serveSite(process.argv[3], Number(process.argv[4]));
} else if (process.argv[2] === '--broker') {
  await serveBroker(process.argv[3]);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ser = arg('--serialization');
  if (ser !== undefined && ser !== 'BINARY2' && ser !== 'TABLEDATA') throw new Error(`--serialization must be BINARY2 or TABLEDATA, not ${ser}`);
  printResults(await benchResults({
    rows: arg('--rows') === undefined ? undefined : Number(arg('--rows')),
    runs: arg('--runs') === undefined ? undefined : Number(arg('--runs')),
    serialization: ser,
    profile: process.argv.includes('--profile'),
    keep: process.argv.includes('--keep'),
    log: (line) => process.stderr.write(`  [results] ${line}\n`),
  }));
}
