/**
 * Plan latency over a federation of 1,000 sites and 100,000 replicas with MOC coverage, built
 * in memory from capability documents: p50/p99/max of `plan()` for random cones over random
 * dataset pairs, against the bare coverage-index cone query over every replica in the same run.
 */
import { pathToFileURL } from 'node:url';
import { plan } from '../broker/planner/plan.js';
import { snapshotFromDocuments } from '../broker/planner/snapshot.js';
import type { PlanRequest } from '../broker/planner/types.js';
import { CoverageIndex } from '../registry/coverage/index.js';
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
}

export interface PlannerBenchResult {
  sites: number;
  replicas: number;
  plans: number;
  buildSeconds: number;
  planP50Ms: number;
  planP99Ms: number;
  planMaxMs: number;
  baselineP50Ms: number;
  baselineP99Ms: number;
  /** plan p99 / baseline p99. */
  ratioP99: number;
  /** Plans that found an eligible site. */
  chosenFraction: number;
}

/** Defaults of the issue: 1,000 sites × 100 replicas, 10,000 plans. */
export const PLANNER_DEFAULTS: PlannerBenchOptions = {
  sites: 1000, replicasPerSite: 100, datasets: 5000, plans: 10_000, minRadiusDeg: 0.1, maxRadiusDeg: 3, seed: 42,
};

const datasetId = (d: number) => `survey${Math.floor(d / 100)}.table${d % 100}`;
const randomDec = (rnd: () => number) => (Math.asin(2 * rnd() - 1) * 180) / Math.PI;

function siteDocument(i: number, opts: PlannerBenchOptions, rnd: () => number): CapabilityDocument {
  const id = `site-${String(i).padStart(4, '0')}`;
  const chosen = new Set<number>();
  while (chosen.size < opts.replicasPerSite) chosen.add(Math.floor(rnd() * opts.datasets));
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
    asOf: new Date(Date.now() - rnd() * 3 * 86_400_000).toISOString(),
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Build the federation in memory, then time plans and bare cone queries over the same cones. */
export async function benchPlanner(options: Partial<PlannerBenchOptions> = {}): Promise<PlannerBenchResult> {
  const opts = { ...PLANNER_DEFAULTS, ...options };
  const rnd = random(opts.seed);
  const started = performance.now();
  // Documents go out of scope once parsed, so the timed loop does not carry them on the heap.
  const snapshot = snapshotFromDocuments(Array.from({ length: opts.sites }, (_, i) => siteDocument(i, opts, rnd)));
  const baseline = new CoverageIndex<string>();
  for (const site of snapshot.sites) for (const r of site.replicas.values()) baseline.set(`${r.row.siteId}\u0000${r.row.datasetId}`, r.moc);
  const buildSeconds = (performance.now() - started) / 1000;

  const requests: PlanRequest[] = Array.from({ length: opts.plans }, (_, i) => {
    const a = Math.floor(rnd() * opts.datasets);
    let b = Math.floor(rnd() * opts.datasets);
    if (b === a) b = (b + 1) % opts.datasets;
    const cone = { ra: rnd() * 360, dec: randomDec(rnd), radiusDeg: opts.minRadiusDeg + rnd() * (opts.maxRadiusDeg - opts.minRadiusDeg) };
    return i % 2 === 0
      ? { kind: 'QUERY', datasets: [datasetId(a), datasetId(b)], region: { cone } }
      : { kind: 'CONTAINER', datasets: [datasetId(a), datasetId(b)], region: { cone }, image: 'images.example.org/astro/base:1.0', cores: 8, memoryGb: 32 };
  });
  const now = Date.now();
  const caller = { groups: [] };
  // Warm up both paths so the JIT has settled before anything is timed.
  for (let i = 0; i < Math.min(500, requests.length); i++) {
    plan(snapshot, requests[i], caller, { now });
    const c = requests[i].region!.cone!;
    baseline.queryCone(c.ra, c.dec, c.radiusDeg);
  }
  const planMs = new Float64Array(requests.length);
  const baseMs = new Float64Array(requests.length);
  let chosen = 0;
  for (let i = 0; i < requests.length; i++) {
    const c = requests[i].region!.cone!;
    let t = performance.now();
    baseline.queryCone(c.ra, c.dec, c.radiusDeg);
    baseMs[i] = performance.now() - t;
    t = performance.now();
    const p = plan(snapshot, requests[i], caller, { now });
    planMs[i] = performance.now() - t;
    if (p.chosen) chosen++;
  }
  planMs.sort();
  baseMs.sort();
  return {
    sites: opts.sites,
    replicas: snapshot.replicaCount,
    plans: requests.length,
    buildSeconds,
    planP50Ms: percentile(planMs, 0.5),
    planP99Ms: percentile(planMs, 0.99),
    planMaxMs: planMs[planMs.length - 1],
    baselineP50Ms: percentile(baseMs, 0.5),
    baselineP99Ms: percentile(baseMs, 0.99),
    ratioP99: percentile(planMs, 0.99) / percentile(baseMs, 0.99),
    chosenFraction: chosen / requests.length,
  };
}

/** Print a planner bench result. */
export function printPlanner(r: PlannerBenchResult): void {
  const ms = (x: number) => x.toFixed(3);
  console.log(`planner: ${r.sites} sites, ${r.replicas} replicas, ${r.plans} plans (built in ${r.buildSeconds.toFixed(1)} s)`);
  console.log(`  plan          p50 ${ms(r.planP50Ms)} ms  p99 ${ms(r.planP99Ms)} ms  max ${ms(r.planMaxMs)} ms  (target p99 < 2 ms: ${r.planP99Ms < 2 ? 'met' : 'MISSED'})`);
  console.log(`  cone baseline p50 ${ms(r.baselineP50Ms)} ms  p99 ${ms(r.baselineP99Ms)} ms  (coverage index over all replicas)`);
  console.log(`  ratio plan/baseline at p99 ${r.ratioP99.toFixed(2)}; ${(100 * r.chosenFraction).toFixed(1)}% of plans found a site`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printPlanner(await benchPlanner());
}
