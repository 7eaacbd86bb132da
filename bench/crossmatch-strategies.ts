/**
 * Bytes moved by the strategy planCrossmatch chooses against the smallest over every strategy ×
 * site choice × tiling (whole region, then every order 0–12), found by exhaustive evaluation in
 * the same run, over generated federations (seeded). Target: within 5% on every federation.
 */
import { pathToFileURL } from 'node:url';
import { SMoc } from '../registry/coverage/moc.js';
import { candidateSpecs, contextOf, evaluateAt, planCrossmatch, structuralReasons } from '../broker/threads/strategies.js';
import { cellOf } from '../broker/threads/tiles.js';
import { STRATEGIES, type CrossmatchSituation, type Holding, type Strategy, type TapFacts } from '../broker/threads/types.js';
import { seededRandom } from '../test/support/random.js';

/** Options of the bench. */
export interface CrossmatchStrategiesOptions {
  federations: number;
  seed: number;
}

/** What the bench measured. */
export interface CrossmatchStrategiesResult {
  federations: number;
  /** Federations where some candidate is eligible (the ratio is taken over these). */
  withChoice: number;
  /** Federations where both the planner and the exhaustive search found nothing. */
  bothRefused: number;
  /** Federations where one found a plan and the other did not (should be 0). */
  disagreements: number;
  /** chosen bytes / exhaustive minimum, sorted ascending. */
  ratios: number[];
  within5: number;
  chosenBy: Record<Strategy, number>;
  tiled: number;
  plannerMs: number;
  exhaustiveMs: number;
  evaluations: number;
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

/** One generated federation: 2–6 sites, each holding either side or both, with assorted TAP limits. */
export function generateSituation(rnd: () => number): CrossmatchSituation {
  const ra = rnd() * 360;
  const dec = (Math.asin(2 * rnd() - 1) * 180) / Math.PI;
  let region: CrossmatchSituation['region'];
  if (rnd() < 0.8) {
    const radiusDeg = 0.05 + rnd() * 2.95;
    region = { moc: SMoc.fromCone(ra, dec, radiusDeg, 10), cone: { ra, dec, radiusDeg } };
  } else {
    const cells = new Set<number>();
    const n = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) cells.add(cellOf(6, (ra + rnd() * 3) % 360, Math.max(-90, Math.min(90, dec + rnd() * 3 - 1.5))));
    region = { moc: SMoc.fromCells(6, cells), cone: null };
  }
  const areaSqDeg = region.moc.areaSqDeg();
  const leftDensity = 200 + rnd() * 20_000;
  const rightDensity = 200 + rnd() * 30_000;
  const leftBytes = 24 + Math.floor(rnd() * 200);
  const rightBytes = 24 + Math.floor(rnd() * 200);
  const nSites = 2 + Math.floor(rnd() * 5);
  const left: Holding[] = [];
  const right: Holding[] = [];
  for (let i = 0; i < nSites; i++) {
    const site = `site-${i}`;
    const tap = (): TapFacts => ({
      service: rnd() < 0.9 ? 'tap' : `tap${Math.floor(rnd() * 2)}`,
      adql: rnd() < 0.95,
      maxRec: pick(rnd, [null, 2_000, 50_000, 1_000_000, 3_000_000]),
      upload: rnd() < 0.7,
      uploadLimitBytes: pick(rnd, [null, 1e6, 1e7, 1e8]),
      rowCap: rnd() < 0.3 ? 100_000 : null,
    });
    const u = rnd();
    // Replicas may cover part of the region, so the same dataset holds different rows at each site.
    if (u < 0.45 || u >= 0.8 || i === 0) left.push({ site, rows: Math.round(leftDensity * areaSqDeg * (0.5 + 0.5 * rnd())), rowBytes: leftBytes, tap: tap() });
    if ((u >= 0.45 && u < 0.8) || u >= 0.8 || i === 1) right.push({ site, rows: Math.round(rightDensity * areaSqDeg * (0.5 + 0.5 * rnd())), rowBytes: rightBytes, tap: tap() });
  }
  const sites = rnd() < 0.15 ? [...new Set([...left, ...right].map((h) => h.site))].filter(() => rnd() < 0.7) : null;
  return { left, right, region, radiusArcsec: 0.5 + rnd() * 9.5, mode: rnd() < 0.5 ? 'BEST' : 'ALL', sites };
}

/** The smallest bytes over every strategy × site choice × tiling that is eligible, or null. */
function exhaustiveMinimum(s: CrossmatchSituation): { bytes: number | null; evaluations: number } {
  const ctx = contextOf(s);
  let best: number | null = null;
  let evaluations = 0;
  for (const strategy of STRATEGIES) {
    for (const spec of candidateSpecs(s, strategy)) {
      if (structuralReasons(spec, s).length > 0) continue;
      for (const order of [null, ...Array.from({ length: 13 }, (_, k) => k)]) {
        evaluations++;
        const e = evaluateAt(spec, s, order, ctx);
        if (e.violations.length === 0 && (best === null || e.bytes.total < best)) best = e.bytes.total;
      }
    }
  }
  return { bytes: best, evaluations };
}

/** Run the bench. */
export function benchCrossmatchStrategies(opts: Partial<CrossmatchStrategiesOptions> = {}): CrossmatchStrategiesResult {
  const { federations, seed } = { federations: 200, seed: 11, ...opts };
  const rnd = seededRandom(seed);
  const situations = Array.from({ length: federations }, () => generateSituation(rnd));
  const r: CrossmatchStrategiesResult = {
    federations, withChoice: 0, bothRefused: 0, disagreements: 0, ratios: [], within5: 0,
    chosenBy: { SAME_SITE: 0, UPLOAD: 0, BROKER: 0 }, tiled: 0, plannerMs: 0, exhaustiveMs: 0, evaluations: 0,
  };
  for (const s of situations) {
    let t = performance.now();
    const plan = planCrossmatch(s);
    r.plannerMs += performance.now() - t;
    t = performance.now();
    const ex = exhaustiveMinimum(s);
    r.exhaustiveMs += performance.now() - t;
    r.evaluations += ex.evaluations;
    if (plan.chosen === null || ex.bytes === null) {
      if (plan.chosen === null && ex.bytes === null) r.bothRefused++;
      else r.disagreements++;
      continue;
    }
    r.withChoice++;
    r.chosenBy[plan.chosen.strategy]++;
    if (plan.chosen.tiling?.order !== null) r.tiled++;
    const ratio = ex.bytes === 0 ? (plan.chosen.bytes.total === 0 ? 1 : Infinity) : plan.chosen.bytes.total / ex.bytes;
    r.ratios.push(ratio);
    if (ratio <= 1.05) r.within5++;
  }
  r.ratios.sort((a, b) => a - b);
  return r;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Print a result. */
export function printCrossmatchStrategies(r: CrossmatchStrategiesResult): void {
  const f = (x: number) => x.toFixed(4);
  console.log(`crossmatch strategies: ${r.federations} generated federations (${r.withChoice} with an eligible strategy, ${r.bothRefused} refused by both, ${r.disagreements} disagreements)`);
  console.log(`  chosen bytes / exhaustive minimum: min ${f(r.ratios[0])}  p50 ${f(percentile(r.ratios, 0.5))}  p90 ${f(percentile(r.ratios, 0.9))}  p99 ${f(percentile(r.ratios, 0.99))}  max ${f(r.ratios[r.ratios.length - 1])}`);
  console.log(`  within 5%: ${r.within5}/${r.withChoice} (target all: ${r.within5 === r.withChoice && r.disagreements === 0 ? 'met' : 'MISSED'})`);
  console.log(`  chosen: SAME_SITE ${r.chosenBy.SAME_SITE}, UPLOAD ${r.chosenBy.UPLOAD}, BROKER ${r.chosenBy.BROKER}; tiled ${r.tiled}`);
  console.log(`  time: planner ${r.plannerMs.toFixed(0)} ms in all, exhaustive ${r.exhaustiveMs.toFixed(0)} ms (${r.evaluations} evaluations); ratio ${(r.plannerMs / r.exhaustiveMs).toFixed(2)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printCrossmatchStrategies(benchCrossmatchStrategies());
}
