/**
 * The planner at federation scale: a federation of `sites` × `replicasPerSite` replicas with MOC
 * coverage, generated from a seed as capability documents, built into a planner snapshot and the
 * coverage view that follows it; then snapshot build time, memory after the build, the time to
 * refresh one changed site (with a new document, and as a harvest sends it: the same document
 * with one coverage changed, the rest lent by the previous snapshot), and p50/p99/max of `plan()` for random cones over random dataset
 * pairs, against the coverage view's cone query over every replica in the same run.
 *
 * `npx tsx bench/planner.ts [sites] [replicasPerSite] [--datasets N] [--plans N] [--seed N]
 * [--profile DIR] [--digest FILE] [--cache DIR]` (defaults 1000 100). Run with
 * `node --expose-gc --import tsx` so memory is read after a full collection. `--profile` writes
 * build.cpuprofile, then (after the timed loop) plan.cpuprofile and cone.cpuprofile; `--digest`
 * writes one line per plan summarising its answer, to compare two planners over the same
 * federation; `--cache` keeps the generated documents in a file, so the next run with the same
 * scale and seed reads them instead of generating them again (the same federation either way).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { plan } from '../broker/planner/plan.js';
import { PlannerSnapshot, snapshotFromDocuments } from '../broker/planner/snapshot.js';
import type { Plan, PlanRequest } from '../broker/planner/types.js';
import { CoverageView } from '../broker/services/coverage-view.js';
import { SMoc } from '../registry/coverage/moc.js';
import type { CapabilityDocument } from '../registry/model/capability.js';
import { seededRandom as random } from '../test/support/random.js';

export interface PlannerBenchOptions {
  sites: number;
  replicasPerSite: number;
  datasets: number;
  plans: number;
  /** Cone radius range in degrees. */
  minRadiusDeg: number;
  maxRadiusDeg: number;
  seed: number;
  /** Write build.cpuprofile and plan.cpuprofile here. */
  profileDir?: string;
  /** Write one summary line per plan here. */
  digestFile?: string;
  /** Keep generated documents here between runs. */
  cacheDir?: string;
}

export interface PlannerBenchResult {
  sites: number;
  replicas: number;
  plans: number;
  /** Generating the capability documents (MOC text included): the bench's own work, not the planner's. */
  documentsSeconds: number;
  /** snapshotFromDocuments: parsing coverage and building the planner's snapshot (wall clock, and CPU time of this process). */
  buildSeconds: number;
  buildCpuSeconds: number;
  /** The coverage view taking the whole snapshot (CoverageView.follow). */
  coverageSeconds: number;
  coverageCpuSeconds: number;
  /** After a full collection, with the documents dropped: the snapshot and the coverage view. */
  rssMb: number;
  heapUsedMb: number;
  /** Memory outside the JS heap: typed array stores. */
  externalMb: number;
  /** Highest RSS of the process so far (documents included). */
  peakRssMb: number;
  /** One site republished with a new document: the snapshot advanced and the coverage view following it (median of 20). */
  refreshOneSiteMs: number;
  /** One site republished as a harvest sends it: its document with asOf moved and one coverage changed (median of 20). */
  refreshHarvestMs: number;
  planP50Ms: number;
  planP99Ms: number;
  planMaxMs: number;
  /** CPU time of the process per plan (threads included), which a loaded machine's waits do not inflate. */
  planCpuP50Ms: number;
  planCpuP99Ms: number;
  baselineP50Ms: number;
  baselineP99Ms: number;
  /** plan p99 / baseline p99. */
  ratioP99: number;
  /** Plans that found an eligible site. */
  chosenFraction: number;
  /** sha256 of the plan digests (identical answers give the same value). */
  digest: string;
}

/** Defaults of the issue: 1,000 sites × 100 replicas, 10,000 plans. */
export const PLANNER_DEFAULTS: PlannerBenchOptions = {
  sites: 1000, replicasPerSite: 100, datasets: 5000, plans: 10_000, minRadiusDeg: 0.1, maxRadiusDeg: 3, seed: 42,
};

const datasetId = (d: number) => `survey${Math.floor(d / 100)}.table${d % 100}`;
const randomDec = (rnd: () => number) => (Math.asin(2 * rnd() - 1) * 180) / Math.PI;
const siteId = (i: number) => `site-${String(i).padStart(5, '0')}`;

function siteDocument(i: number, opts: PlannerBenchOptions, rnd: () => number, asOf: number): CapabilityDocument {
  const id = siteId(i);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(opts.replicasPerSite, opts.datasets)) chosen.add(Math.floor(rnd() * opts.datasets));
  const batch = rnd() < 0.5;
  return {
    schemaVersion: 1,
    site: { id, name: `Bench site ${i}`, platform: 'tap', url: `https://${id}.example.org` },
    services: [{ id: 'tap', type: 'tap', url: `https://${id}.example.org/tap`, upload: true, async: true, maxRec: 10_000_000, auth: ['anonymous'] }],
    datasets: [...chosen].map((d) => ({
      id: datasetId(d),
      service: 'tap',
      table: `s${Math.floor(d / 100)}.t${d % 100}`,
      rows: Math.floor(rnd() * 1e9),
      rowBytes: 100 + Math.floor(rnd() * 900),
      // One replica in twenty is all-sky, one in fifty private; the rest are survey patches of 2-15 degrees.
      coverage: rnd() < 0.05 ? '0/0-11' : SMoc.fromCone(rnd() * 360, randomDec(rnd), 2 + rnd() * 13, 5).toAscii(),
      access: rnd() < 0.02 ? { public: false, groups: ['collab'] } : { public: true },
    })),
    compute: batch ? [{ id: 'batch', kind: 'batch', cores: 512, memoryGb: 2048, freeCores: Math.floor(rnd() * 512), queueWaitS: Math.floor(rnd() * 3600), maxWalltimeS: 86_400 }] : [],
    images: batch ? [{ ref: 'images.example.org/astro/base:1.0', arch: 'amd64', types: ['headless'] }] : [],
    asOf: new Date(asOf - rnd() * 3 * 86_400_000).toISOString(),
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const MB = 1024 * 1024;
/** The coverage view's cone query (the baseline) is timed for every tenth plan's cone. */
const BASELINE_EVERY = 10;

/** CPU seconds (user and system, every thread of the process) since `from`. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

/** A full collection when the process was started with --expose-gc (the figures say so otherwise). */
function collect(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

/** A CPU profile of `work` written to `dir/name.cpuprofile` when `dir` is given. */
async function profiled<T>(dir: string | undefined, name: string, work: () => T): Promise<T> {
  if (dir === undefined) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/**
 * The federation's documents: generated, or read from the cache (the generator is then moved on
 * by as many draws as generating took, so what follows draws the same numbers).
 */
async function documents(opts: PlannerBenchOptions, rnd: () => number, asOf: number, drawn: () => number, skip: (n: number) => void): Promise<CapabilityDocument[]> {
  const file = opts.cacheDir && join(opts.cacheDir, `planner-${opts.sites}x${opts.replicasPerSite}-${opts.datasets}-${opts.seed}.json`);
  if (file) {
    const cached = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (cached !== undefined) {
      const parsed: unknown = JSON.parse(cached);
      if (typeof parsed !== 'object' || parsed === null || !('draws' in parsed) || typeof parsed.draws !== 'number' || !('docs' in parsed) || !Array.isArray(parsed.docs)) {
        throw new Error(`${file} is not a planner bench cache (delete it to generate the documents again)`);
      }
      skip(parsed.draws);
      return parsed.docs;
    }
  }
  const docs = Array.from({ length: opts.sites }, (_, i) => siteDocument(i, opts, rnd, asOf));
  if (file) await writeFile(file, JSON.stringify({ draws: drawn(), docs }));
  return docs;
}

/** One line summarising a plan: its choice, and every candidate that held some requested data. */
function digestOf(p: Plan): string {
  const held = p.candidates.filter((c) => !c.reasons.every((r) => r.code === 'NO_REPLICA'));
  return JSON.stringify([p.chosen?.site ?? null, p.candidates.length + p.withoutData.count, held.map((c) => [c.site, c.eligible, c.score, c.estimatedRows, c.estimatedBytesMoved, c.pool, c.reasons.map((r) => `${r.code}:${r.message}`)])]);
}

/** Build the federation in memory, then time plans and bare cone queries over the same cones. */
export async function benchPlanner(options: Partial<PlannerBenchOptions> = {}): Promise<PlannerBenchResult> {
  const opts = { ...PLANNER_DEFAULTS, ...options };
  const base = random(opts.seed);
  let calls = 0;
  const rnd = () => {
    calls++;
    return base();
  };
  // Fixed, so that the documents (and their freshness) are the same in every run of one seed.
  const asOf = Date.parse('2026-11-23T13:00:00Z');
  const now = asOf;
  let t = performance.now();
  let docs: CapabilityDocument[] | undefined = await documents(opts, rnd, asOf, () => calls, (n) => {
    for (; calls < n; ) rnd();
  });
  const documentsSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  let cpu = process.cpuUsage();
  // The closure reads the variable, so clearing it below lets the documents go.
  let snapshot = await profiled(opts.profileDir, 'build', () => snapshotFromDocuments(docs ?? []));
  const buildSeconds = (performance.now() - t) / 1000;
  const buildCpuSeconds = cpuSeconds(cpu);
  t = performance.now();
  cpu = process.cpuUsage();
  const coverage = new CoverageView();
  coverage.follow(snapshot, undefined);
  const coverageSeconds = (performance.now() - t) / 1000;
  const coverageCpuSeconds = cpuSeconds(cpu);

  // Republishing one site: a new document for it, the snapshot advanced and the view following.
  const refreshMs: number[] = [];
  for (let k = 0; k < 20; k++) {
    const i = Math.floor(rnd() * opts.sites);
    const doc = siteDocument(i, opts, rnd, asOf);
    t = performance.now();
    const next = PlannerSnapshot.advance(snapshot, snapshot.version + 1, new Set([doc.site.id]), snapshotFromDocuments([doc]).sites);
    coverage.follow(next, new Set([doc.site.id]));
    refreshMs.push(performance.now() - t);
    snapshot = next;
  }
  refreshMs.sort((a, b) => a - b);
  // A harvest: the site's own document again, one coverage changed; the rest lent by the previous snapshot.
  // Its own generator, so the plans drawn below are those of runs before this step existed.
  const hrnd = random(opts.seed + 1);
  const harvestMs: number[] = [];
  for (let k = 0; k < 20; k++) {
    const i = Math.floor(hrnd() * opts.sites);
    const id = siteId(i);
    const old = docs.find((d) => d.site.id === id)!;
    const doc: CapabilityDocument = { ...old, asOf: new Date(Date.parse(old.asOf) + 3_600_000).toISOString(), datasets: old.datasets.map((d) => ({ ...d })) };
    if (doc.datasets.length > 0) doc.datasets[Math.floor(hrnd() * doc.datasets.length)].coverage = SMoc.fromCone(hrnd() * 360, randomDec(hrnd), 2 + hrnd() * 13, 5).toAscii();
    t = performance.now();
    const next = PlannerSnapshot.advance(snapshot, snapshot.version + 1, new Set([id]), snapshotFromDocuments([doc], { previous: snapshot }).sites);
    coverage.follow(next, new Set([id]));
    harvestMs.push(performance.now() - t);
    snapshot = next;
  }
  harvestMs.sort((a, b) => a - b);

  docs = undefined;
  const collected = collect();
  const memory = process.memoryUsage();
  if (!collected) console.log('  (run with node --expose-gc for memory after a full collection)');

  const requests: PlanRequest[] = Array.from({ length: opts.plans }, (_, i) => {
    const a = Math.floor(rnd() * opts.datasets);
    let b = Math.floor(rnd() * opts.datasets);
    if (b === a) b = (b + 1) % opts.datasets;
    const cone = { ra: rnd() * 360, dec: randomDec(rnd), radiusDeg: opts.minRadiusDeg + rnd() * (opts.maxRadiusDeg - opts.minRadiusDeg) };
    return i % 2 === 0
      ? { kind: 'QUERY', datasets: [datasetId(a), datasetId(b)], region: { cone } }
      : { kind: 'CONTAINER', datasets: [datasetId(a), datasetId(b)], region: { cone }, image: 'images.example.org/astro/base:1.0', cores: 8, memoryGb: 32 };
  });
  const caller = { groups: [] };
  // Warm up both paths so the JIT has settled before anything is timed.
  for (let i = 0; i < Math.min(500, requests.length); i++) {
    plan(snapshot, requests[i], caller, { now });
    const c = requests[i].region!.cone!;
    if (i % BASELINE_EVERY === 0) coverage.datasetsInCone(c.ra, c.dec, c.radiusDeg);
  }
  const planMs = new Float64Array(requests.length);
  const planCpuMs = new Float64Array(requests.length);
  // The baseline runs for one cone in ten: at a million replicas it takes far longer than a plan.
  const baseMs = new Float64Array(Math.ceil(requests.length / BASELINE_EVERY));
  let chosen = 0;
  // Plans and the baseline in loops of their own: a baseline scan over a million replicas leaves
  // garbage whose collection would otherwise land in the plan after it.
  for (let i = 0; i < requests.length; i++) {
    const c0 = process.cpuUsage();
    const s = performance.now();
    const p = plan(snapshot, requests[i], caller, { now });
    planMs[i] = performance.now() - s;
    const c1 = process.cpuUsage(c0);
    planCpuMs[i] = (c1.user + c1.system) / 1000;
    if (p.chosen) chosen++;
  }
  for (let i = 0; i < requests.length; i += BASELINE_EVERY) {
    const c = requests[i].region!.cone!;
    const s = performance.now();
    coverage.datasetsInCone(c.ra, c.dec, c.radiusDeg);
    baseMs[i / BASELINE_EVERY] = performance.now() - s;
  }
  // Profiles of each path alone, after the timed loop (a profiler slows what it watches).
  if (opts.profileDir !== undefined) {
    await profiled(opts.profileDir, 'plan', () => {
      for (const request of requests) plan(snapshot, request, caller, { now });
    });
    await profiled(opts.profileDir, 'cone', () => {
      for (const request of requests.filter((_, i) => i % BASELINE_EVERY === 0)) coverage.datasetsInCone(request.region!.cone!.ra, request.region!.cone!.dec, request.region!.cone!.radiusDeg);
    });
  }
  // Outside the timed loop: summarise every answer, to compare planners over the same federation.
  const hash = createHash('sha256');
  const out = opts.digestFile === undefined ? undefined : createWriteStream(opts.digestFile);
  for (const request of requests) {
    const line = digestOf(plan(snapshot, request, caller, { now }));
    hash.update(line).update('\n');
    if (out && !out.write(`${line}\n`)) await once(out, 'drain');
  }
  if (out) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  planMs.sort();
  planCpuMs.sort();
  baseMs.sort();
  return {
    sites: opts.sites,
    replicas: snapshot.replicaCount,
    plans: requests.length,
    documentsSeconds,
    buildSeconds,
    buildCpuSeconds,
    coverageSeconds,
    coverageCpuSeconds,
    rssMb: memory.rss / MB,
    heapUsedMb: memory.heapUsed / MB,
    externalMb: memory.external / MB,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    refreshOneSiteMs: refreshMs[refreshMs.length >> 1],
    refreshHarvestMs: harvestMs[harvestMs.length >> 1],
    planP50Ms: percentile(planMs, 0.5),
    planP99Ms: percentile(planMs, 0.99),
    planMaxMs: planMs[planMs.length - 1],
    planCpuP50Ms: percentile(planCpuMs, 0.5),
    planCpuP99Ms: percentile(planCpuMs, 0.99),
    baselineP50Ms: percentile(baseMs, 0.5),
    baselineP99Ms: percentile(baseMs, 0.99),
    ratioP99: percentile(planMs, 0.99) / percentile(baseMs, 0.99),
    chosenFraction: chosen / requests.length,
    digest: hash.digest('hex').slice(0, 16),
  };
}

/** Print a planner bench result. */
export function printPlanner(r: PlannerBenchResult): void {
  const ms = (x: number) => x.toFixed(3);
  console.log(`planner: ${r.sites} sites, ${r.replicas} replicas, ${r.plans} plans`);
  console.log(`  documents generated in ${r.documentsSeconds.toFixed(1)} s (bench input, not timed below)`);
  console.log(`  snapshot built in ${r.buildSeconds.toFixed(1)} s (CPU ${r.buildCpuSeconds.toFixed(1)} s), coverage view in ${r.coverageSeconds.toFixed(1)} s (CPU ${r.coverageCpuSeconds.toFixed(1)} s); one site republished: ${r.refreshOneSiteMs.toFixed(1)} ms (new document), ${r.refreshHarvestMs.toFixed(1)} ms (harvest: one coverage changed)`);
  console.log(`  after build: RSS ${r.rssMb.toFixed(0)} MB (heap ${r.heapUsedMb.toFixed(0)} MB, external ${r.externalMb.toFixed(0)} MB); peak RSS ${r.peakRssMb.toFixed(0)} MB`);
  console.log(`  plan          p50 ${ms(r.planP50Ms)} ms  p99 ${ms(r.planP99Ms)} ms  max ${ms(r.planMaxMs)} ms  (target p99 < 2 ms: ${r.planP99Ms < 2 ? 'met' : 'MISSED'})`);
  console.log(`  plan CPU time p50 ${ms(r.planCpuP50Ms)} ms  p99 ${ms(r.planCpuP99Ms)} ms  (load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores)`);
  console.log(`  cone baseline p50 ${ms(r.baselineP50Ms)} ms  p99 ${ms(r.baselineP99Ms)} ms  (coverage view over all replicas, every tenth cone)`);
  console.log(`  ratio plan/baseline at p99 ${r.ratioP99.toFixed(2)}; ${(100 * r.chosenFraction).toFixed(1)}% of plans found a site; answers digest ${r.digest}`);
}

/** Options from the command line: two positional numbers (sites, replicas per site) and flags. */
function parseArgs(argv: readonly string[]): Partial<PlannerBenchOptions> {
  const out: Partial<PlannerBenchOptions> = {};
  const positional: number[] = [];
  const count = (flag: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer (got ${String(text)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--datasets') out.datasets = count(a, argv[++i]);
    else if (a === '--plans') out.plans = count(a, argv[++i]);
    else if (a === '--seed') out.seed = count(a, argv[++i]);
    else if (a === '--profile') out.profileDir = argv[++i];
    else if (a === '--digest') out.digestFile = argv[++i];
    else if (a === '--cache') out.cacheDir = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else positional.push(count(positional.length === 0 ? 'sites' : 'replicasPerSite', a));
  }
  if (positional.length > 2) throw new Error('give at most two numbers: sites and replicas per site');
  if (positional[0] !== undefined) out.sites = positional[0];
  if (positional[1] !== undefined) out.replicasPerSite = positional[1];
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printPlanner(await benchPlanner(parseArgs(process.argv.slice(2))));
}
