/**
 * The soak's figures and verdict from what a run collected: memory after the warm-up (RSS and
 * V8 heap after forced GCs, each with a least-squares slope), event-loop delay per sampling
 * interval and per minute (intervals holding a forced GC's own pause shown apart), errors by
 * class; then the CSV, the chart and the JSON, and the printed report. A saved JSON can be
 * concluded again (`bench/soak.ts --replot`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { soakSvg, writeChart } from './soak-chart.js';
import type { FaultEvent } from './soak-faults.js';
import { KINDS, type ErrorClass, type LoadReport, type Mix, type SoakError } from './soak-load.js';
import { quantile, samplesCsv, slope, type Sample } from './soak-sampler.js';

export interface SoakOptions {
  minutes: number;
  warmupMinutes: number;
  sampleS: number;
  gcEveryS: number;
  sites: number;
  seed: number;
  /** Output path prefix: <out>.csv, .json, .svg, .png. */
  out: string;
  harvestSchedule: string;
  lookbackS: number;
  maxSlopeMbPerMin: number;
  /** Largest growth of the heap after forced GCs over the fitted window, % of its level at the warm-up's end. */
  maxHeapGrowthPct?: number;
  snapshots?: boolean;
  /** The broker's CONSTELLATION_CACHE_MB (GraphQL response cache). */
  cacheMb?: number;
  mix: Mix;
  keepDb: boolean;
}

/** A scheduled harvest or a job found in the database, classified. */
export interface Classified {
  what: string;
  cls: ErrorClass;
  code: string;
  message: string;
  faults: string;
}

/** What a run collected. */
export interface RawSoak {
  options: SoakOptions;
  loadavg: { start: string; end: string };
  durationMs: number;
  samples: Sample[];
  samplerErrors?: number;
  load: LoadReport;
  /** Jobs in the database by state, and those ending ERROR classified (thread steps included). */
  jobs: { byState: Record<string, number>; errors: Classified[] };
  scheduledHarvests: { byOutcome: Record<string, number>; errors: Classified[] };
  faults: Record<string, number>;
  /** Every fault reading (ms since the load started), for looking into a classification. */
  faultEvents?: FaultEvent[];
  /** Constructors that grew most between the heap snapshots (with --snapshots). */
  heapGrowth?: { name: string; count: number; countDelta: number; bytesDelta: number }[];
  brokerErrorLines: string[];
}

interface LagFigure {
  /** Median over the intervals of each interval's p50 and p99; worst p99; longest delay. */
  p50Ms: number;
  p99MedianMs: number;
  p99Ms: number;
  maxMs: number;
  /** The same worst figures over the intervals without a forced GC (its pause is the bench's, not the load's). */
  p99MsNoGc: number;
  maxMsNoGc: number;
}

export interface SoakReport extends RawSoak {
  memory: {
    rssStartMb: number;
    rssWarmupEndMb: number;
    rssEndMb: number;
    rssSlopeMbPerMin: number;
    rssFit: { a: number; b: number };
    heapAfterGcWarmupEndMb?: number;
    heapAfterGcEndMb?: number;
    heapAfterGcSlopeMbPerMin?: number;
    /** The heap after GC's fitted growth from the warm-up's end to the load's end, % of its level at the warm-up's end. */
    heapAfterGcGrowthPct?: number;
  };
  lag: { overall: LagFigure; perMinute: ({ minute: number } & LagFigure)[] };
  verdict: { growth: boolean; unexplained: number; pass: boolean; why: string[] };
  files: { csv: string; json: string; svg: string; png?: string; pngWhy?: string };
}

const MB = 1048576;

/** Figures, verdict and files of a run; writes <out>.csv, .json, .svg and .png. */
export async function conclude(raw: RawSoak): Promise<SoakReport> {
  const o = raw.options;
  const warmupMs = o.warmupMinutes * 60_000;
  const loadEndMs = o.minutes * 60_000;
  const memory = memoryFigures(raw.samples, warmupMs, loadEndMs);
  const lag = lagFigures(raw.samples);
  const unexplained = [...raw.load.errors, ...raw.jobs.errors, ...raw.scheduledHarvests.errors].filter((e) => e.cls === 'unexplained').length;
  const why: string[] = [];
  const maxHeapPct = o.maxHeapGrowthPct ?? 2;
  const rssGrows = memory.rssSlopeMbPerMin > o.maxSlopeMbPerMin;
  const heapGrows = (memory.heapAfterGcGrowthPct ?? 0) > maxHeapPct;
  const growth = rssGrows || heapGrows;
  if (rssGrows) why.push(`RSS grows after the warm-up: ${memory.rssSlopeMbPerMin.toFixed(3)} MB/min (limit ${o.maxSlopeMbPerMin})`);
  if (heapGrows) why.push(`the heap after forced GCs grows after the warm-up: ${memory.heapAfterGcSlopeMbPerMin?.toFixed(3)} MB/min, ${memory.heapAfterGcGrowthPct?.toFixed(1)} % over the window (limit ${maxHeapPct} %)`);
  if (unexplained) why.push(`${unexplained} unexplained errors`);
  await mkdir(dirname(resolve(o.out)), { recursive: true });
  const csv = `${o.out}.csv`;
  await writeFile(csv, samplesCsv(raw.samples, warmupMs, loadEndMs));
  const caption = `soak ${o.minutes} min, 1 broker on PostgreSQL, ${o.sites} faulty sites; load average ${raw.loadavg.start} → ${raw.loadavg.end}; a delay spike right after a red dot holds the forced GC's own pause`;
  const chart = await writeChart(o.out, soakSvg(raw.samples, warmupMs, loadEndMs, caption, memory.rssFit));
  const report: SoakReport = {
    ...raw,
    memory,
    lag,
    verdict: { growth, unexplained, pass: why.length === 0, why },
    files: { csv, json: `${o.out}.json`, svg: chart.svg, ...(chart.png ? { png: chart.png } : {}), ...(chart.why ? { pngWhy: chart.why } : {}) },
  };
  await writeFile(`${o.out}.json`, JSON.stringify(report, null, 2));
  return report;
}

/** Memory after the warm-up and until the load ends (the drain after it, quieter, would bend the fit down). */
function memoryFigures(samples: readonly Sample[], warmupMs: number, loadEndMs: number): SoakReport['memory'] {
  const steady = samples.filter((s) => s.t >= warmupMs && s.t <= loadEndMs);
  const pts = steady.map((s) => ({ x: s.t / 60_000, y: s.rssBytes / MB }));
  const b = slope(pts);
  const mx = pts.reduce((a, p) => a + p.x, 0) / Math.max(1, pts.length);
  const my = pts.reduce((a, p) => a + p.y, 0) / Math.max(1, pts.length);
  const gcs = steady.filter((s) => s.heapAfterGcBytes !== undefined);
  const firstSteady = steady[0] ?? samples.at(-1);
  return {
    rssStartMb: (samples[0]?.rssBytes ?? 0) / MB,
    rssWarmupEndMb: (firstSteady?.rssBytes ?? 0) / MB,
    rssEndMb: (steady.at(-1)?.rssBytes ?? samples.at(-1)?.rssBytes ?? 0) / MB,
    rssSlopeMbPerMin: b,
    rssFit: { a: my - b * mx, b },
    ...(gcs.length
      ? {
          heapAfterGcWarmupEndMb: (gcs[0].heapAfterGcBytes ?? 0) / MB,
          heapAfterGcEndMb: (gcs.at(-1)?.heapAfterGcBytes ?? 0) / MB,
          heapAfterGcSlopeMbPerMin: slope(gcs.map((s) => ({ x: s.t / 60_000, y: (s.heapAfterGcBytes ?? 0) / MB }))),
          heapAfterGcGrowthPct: (100 * slope(gcs.map((s) => ({ x: s.t / 60_000, y: (s.heapAfterGcBytes ?? 0) / MB }))) * ((loadEndMs - warmupMs) / 60_000)) / ((gcs[0].heapAfterGcBytes ?? 1) / MB),
        }
      : {}),
  };
}

/** True for the interval after a sample that forced a GC (the GC ran right after that scrape). */
function gcIntervals(samples: readonly Sample[]): Set<Sample> {
  const out = new Set<Sample>();
  samples.forEach((s, i) => {
    if (s.heapAfterGcBytes !== undefined && samples[i + 1]) out.add(samples[i + 1]);
  });
  return out;
}

function lagFigure(xs: readonly Sample[], gc: ReadonlySet<Sample>): LagFigure {
  const ms = (ys: readonly Sample[], f: (s: Sample) => number) => ys.map((s) => f(s) * 1000);
  const quiet = xs.filter((s) => !gc.has(s));
  return {
    p50Ms: quantile(ms(xs, (s) => s.lagP50), 0.5),
    p99MedianMs: quantile(ms(xs, (s) => s.lagP99), 0.5),
    p99Ms: Math.max(0, ...ms(xs, (s) => s.lagP99)),
    maxMs: Math.max(0, ...ms(xs, (s) => s.lagMax)),
    p99MsNoGc: Math.max(0, ...ms(quiet, (s) => s.lagP99)),
    maxMsNoGc: Math.max(0, ...ms(quiet, (s) => s.lagMax)),
  };
}

function lagFigures(samples: readonly Sample[]): SoakReport['lag'] {
  const gc = gcIntervals(samples);
  const perMinute: SoakReport['lag']['perMinute'] = [];
  const minutes = Math.ceil((samples.at(-1)?.t ?? 0) / 60_000);
  for (let m = 0; m < minutes; m++) {
    const xs = samples.filter((s) => s.t > m * 60_000 && s.t <= (m + 1) * 60_000);
    if (xs.length) perMinute.push({ minute: m + 1, ...lagFigure(xs, gc) });
  }
  return { overall: lagFigure(samples, gc), perMinute };
}

/** Print the report. */
export function printSoak(r: SoakReport): void {
  const o = r.options;
  const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
  console.log(`soak: ${o.minutes} min (${(r.durationMs / 60_000).toFixed(1)} min with the drain), 1 broker process on PostgreSQL, ${o.sites} simulated TAP sites injecting faults, harvest schedule "${o.harvestSchedule}"; load average ${r.loadavg.start} at the start, ${r.loadavg.end} at the end`);
  console.log(`  result: ${r.verdict.pass ? 'PASS' : 'FAIL'}${r.verdict.why.length ? ` (${r.verdict.why.join('; ')})` : ''}`);
  const minutes = Math.max(1, o.minutes);
  console.log('  mix (requests started per minute, mean over the run; ok; errors; skipped because too many were in flight):');
  for (const k of KINDS) {
    const started = r.load.started[k].reduce((a, b) => a + b, 0);
    const errs = r.load.errors.filter((e) => e.kind === k).length;
    console.log(`    ${k.padEnd(12)} ${(started / minutes).toFixed(1).padStart(6)}/min  (${started} started, ${r.load.ok[k]} ok, ${errs} errors, ${r.load.skipped[k]} skipped)`);
  }
  console.log(`  jobs followed: ${JSON.stringify(r.load.jobStates)}; threads: ${JSON.stringify(r.load.threadStates)}; API harvests: ${JSON.stringify(r.load.harvestOutcomes)}`);
  console.log(`  jobs in the database (thread steps included): ${JSON.stringify(r.jobs.byState)}; harvest runs: ${JSON.stringify(r.scheduledHarvests.byOutcome)}`);
  const m = r.memory;
  const ratio = (a?: number, b?: number) => (a === undefined || b === undefined || b === 0 ? '-' : (a / b).toFixed(3));
  console.log(`  memory (baseline: the warm-up's end): RSS ${f(m.rssStartMb)} MB at the first sample, ${f(m.rssWarmupEndMb)} MB after the ${o.warmupMinutes}-min warm-up, ${f(m.rssEndMb)} MB when the load ended (×${ratio(m.rssEndMb, m.rssWarmupEndMb)}); least-squares slope from warm-up to load end ${f(m.rssSlopeMbPerMin, 3)} MB/min`);
  console.log(`          V8 heap after a forced GC: ${f(m.heapAfterGcWarmupEndMb)} MB after warm-up, ${f(m.heapAfterGcEndMb)} MB when the load ended (×${ratio(m.heapAfterGcEndMb, m.heapAfterGcWarmupEndMb)}); slope ${f(m.heapAfterGcSlopeMbPerMin, 3)} MB/min, ${f(m.heapAfterGcGrowthPct)} % over the window`);
  if (r.heapGrowth) {
    console.log('  heap snapshots, warm-up end → load end, constructors that grew most (self bytes, count now, count change):');
    for (const g of r.heapGrowth) console.log(`    ${(g.bytesDelta / 1024).toFixed(0).padStart(8)} KiB  ${String(g.count).padStart(8)}  ${g.countDelta >= 0 ? '+' : ''}${g.countDelta}  ${g.name.slice(0, 80)}`);
  }
  const l = r.lag.overall;
  console.log(`  event-loop delay as prom-client measures it (10-ms resolution: an idle loop reads about 10 ms), per ${o.sampleS}-s interval: median p50 ${f(l.p50Ms)} ms, median p99 ${f(l.p99MedianMs)} ms, worst p99 ${f(l.p99Ms)} ms, max ${f(l.maxMs)} ms; without the intervals holding a forced GC: worst p99 ${f(l.p99MsNoGc)} ms, max ${f(l.maxMsNoGc)} ms`);
  console.log(`    per minute (median p99 / worst p99 / max, ms; max without the forced GC's interval): ${r.lag.perMinute.map((x) => `${x.minute}: ${f(x.p99MedianMs, 0)}/${f(x.p99Ms, 0)}/${f(x.maxMs, 0)} (${f(x.maxMsNoGc, 0)})`).join('  ')}`);
  console.log(`  faults injected: ${Object.entries(r.faults).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const all: { source: string; cls: ErrorClass; code: string; line: string }[] = [
    ...r.load.errors.map((e: SoakError) => ({ source: `client ${e.kind}`, cls: e.cls, code: e.code, line: `${(e.at / 1000).toFixed(0)} s ${e.subject}: ${e.message}${e.faults ? ` [faults: ${e.faults}]` : ''}` })),
    ...r.jobs.errors.map((e) => ({ source: 'job in database', cls: e.cls, code: e.code, line: `${e.what}: ${e.message}${e.faults ? ` [faults: ${e.faults}]` : ''}` })),
    ...r.scheduledHarvests.errors.map((e) => ({ source: 'harvest run', cls: e.cls, code: e.code, line: `${e.what}: ${e.message}${e.faults ? ` [faults: ${e.faults}]` : ''}` })),
  ];
  const byClass = new Map<string, number>();
  for (const e of all) byClass.set(`${e.cls} | ${e.source} | ${e.code}`, (byClass.get(`${e.cls} | ${e.source} | ${e.code}`) ?? 0) + 1);
  console.log(`  errors by class (${all.length}):`);
  for (const [k, n] of [...byClass].sort()) console.log(`    ${String(n).padStart(5)}  ${k}`);
  const unexplained = all.filter((e) => e.cls === 'unexplained');
  if (unexplained.length) console.log(`  UNEXPLAINED (${unexplained.length}, first 30):`);
  for (const e of unexplained.slice(0, 30)) console.log(`    ${e.source} ${e.code}: ${e.line}`);
  console.log(`  broker log lines at error level: ${r.brokerErrorLines.length}${r.brokerErrorLines.length ? `; first: ${r.brokerErrorLines.slice(0, 3).map((x) => x.slice(0, 300)).join(' | ')}` : ''}`);
  if (r.samplerErrors) console.log(`  samples that failed: ${r.samplerErrors}`);
  console.log(`  files: ${r.files.csv}, ${r.files.json}, ${r.files.svg}${r.files.png ? `, ${r.files.png}` : ` (no PNG: ${r.files.pngWhy})`}`);
}
