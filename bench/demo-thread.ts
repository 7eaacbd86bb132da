/**
 * The demo's cross-match thread end to end against the same join asked of one site directly
 * (issue 11, last benchmark), as ratios from one run.
 *
 *   npx tsx bench/demo-thread.ts [--small] [--reps 3]
 *
 * THREAD: the demo's main-patch cross-match exactly as `constellation demo` runs it
 * (demo/run-demo.ts): two simulated centres (Gaia-like, Pan-STARRS-like), a broker as a child
 * `serve` process on a temporary embedded database, both centres harvested, then `crossmatch`
 * (BEST, 1″, the cone round the 10°×10° patch) through the public GraphQL API, followed over the
 * `threadUpdated` subscription, and the result read from `/results/<id>?format=csv`: timed from
 * the mutation to the result's last byte.
 * DIRECT, the baseline: a third simulated centre holding both catalogues, asked the same join in
 * one synchronous ADQL query (POST {tap}/sync): the text `sameSiteJoinAdql` writes for a
 * SAME_SITE step (same columns, same cone, same radius; CONTAINS(POINT, CIRCLE), so the
 * centre's declination-band hint lets its index serve the join), timed to the last byte of its
 * VOTable. That centre is not in the broker's federation, so the broker plans as in the demo.
 * One warm-up of each, then `reps` rounds of both, the order alternating by round. Both pair
 * sets must equal the truth (recall and precision 1) and each other (the demo catalogues' truth
 * makes BEST and ALL the same), or the bench fails. Peak RSS of the broker process and of its
 * embedded-database process: VmHWM, reset through /proc/<pid>/clear_refs before each thread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readVOTableToArray } from '../adapters/ivoa/votable/index.js';
import { sameSiteJoinAdql } from '../broker/threads/adql.js';
import { MAIN_PATCH, truthInCone, type CatalogueOptions } from '../demo/catalogues.js';
import { startCentre, type Centre } from '../demo/centre.js';
import { DEMO_DATASETS, startDemoCentres, type DemoCentres } from '../demo/demo-centres.js';
import { rowCount } from '../demo/table.js';
import { packagePath } from '../registry/paths.js';
import { SubscriptionClient } from '../test/support/subscriptions.js';
import { freePort, graphql, ready } from '../demo/broker-client.js';

/** Options of `benchDemoThread`. */
export interface DemoThreadBenchOptions {
  /** Catalogue sizes (default: the demo's, 200,000 Gaia-like and 240,000 Pan-STARRS-like rows in the main patch). */
  catalogues?: CatalogueOptions;
  /** Measured rounds of both forms, after one warm-up of each (default 3). */
  reps?: number;
  log?: (line: string) => void;
}

/** One timed run of one form. */
export interface FormRun {
  ms: number;
  pairs: number;
  /** Bytes of the answer read (CSV for the thread, VOTable BINARY2 for the direct query). */
  bytes: number;
  /** THREAD: mutation answered, COMPLETED seen, result read (ms from the mutation's start). */
  phases: Record<string, number>;
}

/** One thread run with what the thread reported. */
export interface ThreadRun extends FormRun {
  threadId: string;
  strategy: string;
  steps: number;
  rowsMoved: number;
  bytesMoved: number;
  /** Peak RSS (VmHWM) during the thread of the broker process and of its embedded-database process, bytes (0 when unreadable). */
  brokerPeakRss: number;
  databasePeakRss: number;
}

/** The bench's result. */
export interface DemoThreadBenchResult {
  gaiaRows: number;
  ps1Rows: number;
  cone: { ra: number; dec: number; radiusDeg: number };
  radiusArcsec: number;
  truePairs: number;
  adql: string;
  warmup: { thread: ThreadRun; direct: FormRun };
  thread: ThreadRun[];
  direct: FormRun[];
  /** Whether the thread's and the direct query's pair sets are the same set. */
  sameSet: boolean;
  /** Plan candidates of the last thread: strategy, eligible, estimated bytes, steps. */
  plan: { strategy: string; chosen: boolean; eligible: boolean; estimatedBytesMoved: number; steps: number; sites: string }[];
  /** Peak RSS (VmHWM) from the broker's start through the harvest, bytes. */
  brokerStartPeakRss: number;
  databaseStartPeakRss: number;
  rssMethod: string;
  load: { before: string; after: string };
}

interface ThreadView {
  id: string;
  state: string;
  results: string | null;
  error: { code: string; message: string } | null;
  progress: { stepsDone: number; stepsTotal: number; rows: number; bytes: number };
  plan: { candidates: { strategy: string; chosen: boolean; eligible: boolean; leftSite: string | null; rightSite: string | null; estimatedBytesMoved: number; steps: number }[] } | null;
}

const THREAD_FIELDS = `id state results error { code message } progress { stepsDone stepsTotal rows bytes }
  plan { candidates { strategy chosen eligible leftSite rightSite estimatedBytesMoved steps } }`;

const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

// The demo's main-patch cone (run-demo.ts REGIONS[0]).
const CONE = { ra: (MAIN_PATCH.raMin + MAIN_PATCH.raMax) / 2, dec: (MAIN_PATCH.decMin + MAIN_PATCH.decMax) / 2, radiusDeg: Math.hypot(5, 5) + 0.01 };

// ---------- peak RSS from /proc ----------

function statusKb(pid: number, key: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Child pids of `pid` (the broker's embedded-database process is its only child). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Resets VmHWM of `pids` to their current RSS; false when /proc/<pid>/clear_refs cannot be written. */
function resetPeak(pids: number[]): boolean {
  try {
    for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

// ---------- the two forms ----------

/** The (source_id|objID) keys of a CSV with columns ending in source_id and objid (ids kept as text: they pass 2^53). */
function csvPairs(text: string): string[] {
  const [header, ...lines] = text.trim().split(/\r?\n/);
  const columns = header.split(',').map((c) => c.toLowerCase());
  const left = columns.findIndex((c) => c.endsWith('source_id'));
  const right = columns.findIndex((c) => c.endsWith('objid'));
  if (left < 0 || right < 0) throw new Error(`the thread's result has no source_id and objid columns (it has ${header})`);
  return lines.filter(Boolean).map((line) => {
    const cells = line.split(',');
    return `${cells[left]}|${cells[right]}`;
  });
}

interface Broker {
  base: string;
  pid: number;
  radiusArcsec: number;
  subscriptions: SubscriptionClient;
}

/** One demo thread: the mutation, the subscription until final, the CSV to its last byte. */
async function runThread(b: Broker): Promise<{ run: ThreadRun; pairs: string[]; plan: ThreadView['plan'] }> {
  const pids = [b.pid, ...childPids(b.pid)];
  const canReset = resetPeak(pids);
  const t0 = performance.now();
  const { crossmatch } = await graphql<{ crossmatch: ThreadView }>(b.base, `mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD_FIELDS} } }`, {
    i: {
      left: { dataset: DEMO_DATASETS.gaia, columns: ['source_id'] },
      right: { dataset: DEMO_DATASETS.ps1, columns: ['objid'] },
      region: { cone: CONE },
      radiusArcsec: b.radiusArcsec,
      mode: 'BEST',
    },
  });
  const submitted = performance.now();
  // The subscription answers the thread as it is first, so a thread already final is seen at once.
  let last: ThreadView | undefined;
  let completedAt = 0;
  await b.subscriptions.run<{ threadUpdated: ThreadView }>(`subscription($id: ID!) { threadUpdated(id: $id) { ${THREAD_FIELDS} } }`, { id: crossmatch.id }, 600_000, (data) => {
    last = data.threadUpdated;
    if (FINAL.has(last.state)) completedAt = performance.now();
  });
  const done = last;
  if (!done || done.state !== 'COMPLETED' || !done.results) throw new Error(`thread ${crossmatch.id} ended ${done?.state ?? '(no update)'}: ${done?.error?.code ?? ''} ${done?.error?.message ?? ''}`);
  const res = await fetch(`${b.base}${done.results}${done.results.includes('?') ? '&' : '?'}format=csv`);
  if (!res.ok) throw new Error(`GET ${done.results}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  const t1 = performance.now();
  const pairs = csvPairs(body.toString('utf8'));
  const chosen = (done.plan ?? crossmatch.plan)?.candidates.find((c) => c.chosen);
  const db = childPids(b.pid);
  return {
    run: {
      ms: t1 - t0,
      pairs: pairs.length,
      bytes: body.length,
      phases: { submitted: submitted - t0, completed: completedAt - t0, read: t1 - completedAt },
      threadId: done.id,
      strategy: chosen?.strategy ?? '?',
      steps: done.progress.stepsTotal,
      rowsMoved: done.progress.rows,
      bytesMoved: done.progress.bytes,
      brokerPeakRss: canReset ? statusKb(b.pid, 'VmHWM') : 0,
      databasePeakRss: canReset && db.length > 0 ? statusKb(db[0], 'VmHWM') : 0,
    },
    pairs,
    plan: done.plan ?? crossmatch.plan,
  };
}

/** One synchronous ADQL join at the centre holding both catalogues, to the last byte of its VOTable. */
async function runDirect(both: Centre, adql: string): Promise<{ run: FormRun; pairs: string[] }> {
  const t0 = performance.now();
  const res = await fetch(`${both.url}/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: adql }) });
  const body = Buffer.from(await res.arrayBuffer());
  const t1 = performance.now();
  if (!res.ok) throw new Error(`direct query: HTTP ${res.status}: ${body.toString('utf8').slice(0, 500)}`);
  const doc = await readVOTableToArray(body);
  if (doc.overflow) throw new Error('direct query: the centre cut the answer at MAXREC (OVERFLOW)');
  const table = doc.tables[0];
  if (!table) throw new Error('direct query: the answer has no table');
  const names = table.meta.fields.map((f) => f.name.toLowerCase());
  const left = names.findIndex((n) => n.endsWith('source_id'));
  const right = names.findIndex((n) => n.endsWith('objid'));
  if (left < 0 || right < 0) throw new Error(`direct query: no source_id and objid columns (it has ${names.join(', ')})`);
  const pairs = table.rows.map((r) => `${String(r[left])}|${String(r[right])}`);
  return { run: { ms: t1 - t0, pairs: pairs.length, bytes: body.length, phases: {} }, pairs };
}

/** Checks a pair list against the truth: no duplicates, every true pair, nothing else. */
function checkAgainstTruth(what: string, pairs: string[], truth: Set<string>): void {
  const set = new Set(pairs);
  let hits = 0;
  for (const p of set) if (truth.has(p)) hits++;
  if (set.size !== pairs.length || hits !== truth.size || set.size !== truth.size) {
    throw new Error(`${what}: ${pairs.length} pairs (${set.size} distinct), ${hits} of ${truth.size} true: recall ${(hits / truth.size).toFixed(4)}, precision ${(hits / Math.max(1, set.size)).toFixed(4)}`);
  }
}

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((p) => sa.has(p));
}

// ---------- the bench ----------

/** Runs the demo thread and the direct join, interleaved, and checks both against the truth. */
export async function benchDemoThread(opts: DemoThreadBenchOptions = {}): Promise<DemoThreadBenchResult> {
  const reps = opts.reps ?? 3;
  const log = opts.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'bench-demo-thread-'));
  let centres: DemoCentres | undefined;
  let both: Centre | undefined;
  let broker: ChildProcess | undefined;
  let subscriptions: SubscriptionClient | undefined;
  const loadBefore = loadAverage();
  try {
    centres = await startDemoCentres({ catalogues: opts.catalogues });
    const { catalogues } = centres;
    log(`centres up: ${rowCount(catalogues.gaia)} Gaia-like and ${rowCount(catalogues.ps1)} Pan-STARRS-like rows (generated in ${centres.timings.generateMs} ms, started in ${centres.timings.startMs} ms)`);
    const t = performance.now();
    both = await startCentre({ name: 'Both catalogues (simulated)', tables: [catalogues.gaia, catalogues.ps1] });
    log(`centre with both catalogues up at ${both.url} in ${Math.round(performance.now() - t)} ms`);
    const radiusArcsec = catalogues.options.radiusArcsec;
    const truth = new Set(truthInCone(catalogues.truth, CONE.ra, CONE.dec, CONE.radiusDeg).map((p) => `${p.sourceId}|${p.objId}`));

    // The join a SAME_SITE step would send, in the centre's own names, over the same cone; the right
    // side read over the cone widened by the radius, as the broker's tiles read it.
    const adql = sameSiteJoinAdql({
      left: { table: catalogues.gaia.name, ra: 'ra', dec: 'dec', columns: [{ name: 'source_id', as: 'source_id' }] },
      right: { table: catalogues.ps1.name, ra: 'raMean', dec: 'decMean', columns: [{ name: 'objID', as: 'objid' }] },
      radiusArcsec,
      leftIn: [{ kind: 'circle', circle: CONE }],
      rightIn: [{ kind: 'circle', circle: { ...CONE, radiusDeg: CONE.radiusDeg + radiusArcsec / 3600 } }],
    });

    // The broker as the demo starts it: `serve` in a child process on its own temporary embedded database.
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const federation = join(dir, 'federation.yaml');
    await writeFile(federation, centres.federationYaml('demo').replace(/^sites:/m, 'registration: { open: true }\nsites:'));
    broker = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'serve'], {
      env: { ...process.env, DATABASE_URL: '', PORT: String(port), HOST: '127.0.0.1', CONSTELLATION_CONFIG: federation, CONSTELLATION_DATA: join(dir, 'data'), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await ready(base, broker);
    for (const site of ['gaia-centre', 'ps1-centre']) {
      const { harvest } = await graphql<{ harvest: { outcome: string; errorMessage: string | null } }>(base, `mutation($s: ID!) { harvest(siteId: $s) { outcome errorMessage } }`, { s: site });
      if (harvest.outcome !== 'OK') throw new Error(`harvesting ${site}: ${harvest.outcome} ${harvest.errorMessage ?? ''}`);
    }
    const pid = broker.pid ?? 0;
    const dbPid = childPids(pid)[0];
    const brokerStartPeakRss = statusKb(pid, 'VmHWM');
    const databaseStartPeakRss = dbPid === undefined ? 0 : statusKb(dbPid, 'VmHWM');
    const rssMethod = resetPeak([pid]) ? 'VmHWM, reset through /proc/<pid>/clear_refs before each thread' : 'not measured: /proc/<pid>/clear_refs cannot be written';
    log(`broker up at ${base} (pid ${pid}, embedded database pid ${dbPid ?? '?'}), both centres harvested`);
    subscriptions = await SubscriptionClient.connect(base);
    const b: Broker = { base, pid, radiusArcsec, subscriptions };
    // The last run's pairs of each form and the last thread's plan.
    const seen: { threadPairs: string[]; directPairs: string[]; plan: ThreadView['plan'] } = { threadPairs: [], directPairs: [], plan: null };

    const thread = async (): Promise<ThreadRun> => {
      const r = await runThread(b);
      checkAgainstTruth(`thread ${r.run.threadId}`, r.pairs, truth);
      seen.threadPairs = r.pairs;
      seen.plan = r.plan;
      log(`thread ${r.run.threadId}: ${(r.run.ms / 1000).toFixed(2)} s, ${r.run.pairs} pairs, ${r.run.strategy} ${r.run.steps} steps, ${r.run.rowsMoved} rows and ${r.run.bytesMoved} bytes moved`);
      return r.run;
    };
    const direct = async (): Promise<FormRun> => {
      const r = await runDirect(both!, adql);
      checkAgainstTruth('direct query', r.pairs, truth);
      seen.directPairs = r.pairs;
      log(`direct: ${(r.run.ms / 1000).toFixed(2)} s, ${r.run.pairs} pairs, ${r.run.bytes} bytes`);
      return r.run;
    };

    log('warm-up');
    const warmup = { thread: await thread(), direct: await direct() };
    const threads: ThreadRun[] = [];
    const directs: FormRun[] = [];
    for (let i = 0; i < reps; i++) {
      log(`round ${i + 1} of ${reps}`);
      if (i % 2 === 0) {
        threads.push(await thread());
        directs.push(await direct());
      } else {
        directs.push(await direct());
        threads.push(await thread());
      }
    }
    return {
      gaiaRows: rowCount(catalogues.gaia),
      ps1Rows: rowCount(catalogues.ps1),
      cone: CONE,
      radiusArcsec,
      truePairs: truth.size,
      adql,
      warmup,
      thread: threads,
      direct: directs,
      sameSet: sameSet(seen.threadPairs, seen.directPairs),
      plan: (seen.plan?.candidates ?? []).map((c) => ({ strategy: c.strategy, chosen: c.chosen, eligible: c.eligible, estimatedBytesMoved: c.estimatedBytesMoved, steps: c.steps, sites: [c.leftSite, c.rightSite].filter(Boolean).join(' + ') })),
      brokerStartPeakRss,
      databaseStartPeakRss,
      rssMethod,
      load: { before: loadBefore, after: loadAverage() },
    };
  } finally {
    subscriptions?.close();
    if (broker && broker.exitCode === null) {
      const exited = new Promise((r) => broker?.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    await both?.close();
    await centres?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** Prints the result: each form's runs, min and median, the ratios THREAD / DIRECT, bytes moved and peak RSS. */
export function printDemoThread(r: DemoThreadBenchResult): void {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`demo thread: ${r.gaiaRows.toLocaleString('en')} Gaia-like × ${r.ps1Rows.toLocaleString('en')} Pan-STARRS-like rows, cone (${r.cone.ra}, ${r.cone.dec}, ${r.cone.radiusDeg.toFixed(2)}°), ${r.radiusArcsec}″, ${r.truePairs.toLocaleString('en')} true pairs`);
  console.log(`  load average before ${r.load.before}, after ${r.load.after}`);
  for (const c of r.plan) console.log(`  plan ${c.chosen ? '→' : ' '} ${c.strategy.padEnd(9)} ${c.sites.padEnd(25)} ${c.eligible ? `${mb(c.estimatedBytesMoved)} estimated, ${c.steps} steps` : 'not eligible'}`);
  const t = r.thread.map((x) => x.ms);
  const d = r.direct.map((x) => x.ms);
  const row = (label: string, xs: number[], warm: number) => `  ${label.padEnd(44)} ${xs.map((x) => s(x).padStart(8)).join('')}   min ${s(Math.min(...xs)).padStart(8)}  median ${s(median(xs)).padStart(8)}  (warm-up ${s(warm)})`;
  console.log(row('THREAD crossmatch → COMPLETED → CSV last byte', t, r.warmup.thread.ms));
  console.log(row('DIRECT one sync ADQL join at one centre', d, r.warmup.direct.ms));
  console.log(`  ratio THREAD / DIRECT: min ${(Math.min(...t) / Math.min(...d)).toFixed(2)}, median ${(median(t) / median(d)).toFixed(2)}`);
  const last = r.thread[r.thread.length - 1];
  const ph = (k: string) => median(r.thread.map((x) => x.phases[k]));
  console.log(`  thread phases (medians): mutation answered ${s(ph('submitted'))}, COMPLETED seen ${s(ph('completed'))}, CSV read ${s(ph('read'))} (${mb(last.bytes)})`);
  console.log(`  thread: ${last.strategy}, ${last.steps} steps, ${last.rowsMoved.toLocaleString('en')} rows and ${mb(last.bytesMoved)} moved into the broker (progress); direct answer ${mb(r.direct[0].bytes)} (VOTable BINARY2)`);
  console.log(`  pairs: thread ${r.thread.map((x) => x.pairs).join(', ')}; direct ${r.direct.map((x) => x.pairs).join(', ')}; recall and precision 1.0000 for both; same pair set: ${r.sameSet ? 'yes' : 'NO'}`);
  const peak = (xs: number[]) => (xs.every((x) => x > 0) ? `${xs.map((x) => (x / 2 ** 20).toFixed(0)).join(', ')} MiB` : 'not measured');
  console.log(`  peak RSS (${r.rssMethod}): broker process ${peak(r.thread.map((x) => x.brokerPeakRss))}, its embedded database ${peak(r.thread.map((x) => x.databasePeakRss))}; from start through the harvest ${(r.brokerStartPeakRss / 2 ** 20).toFixed(0)} and ${(r.databaseStartPeakRss / 2 ** 20).toFixed(0)} MiB`);
  console.log(`  direct ADQL: ${r.adql}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i >= 0 ? process.argv[i + 1] : undefined; };
  const small = process.argv.includes('--small');
  const result = await benchDemoThread({
    catalogues: small ? { gaiaRows: 20_000, ps1Rows: 24_000, smallPatchRows: 200 } : {},
    reps: Number(arg('--reps') ?? 3),
    log: (l) => console.error(l),
  });
  printDemoThread(result);
}
