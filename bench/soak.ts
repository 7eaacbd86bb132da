/**
 * Issue 13, point 6: a soak. One `constellation serve` process (a child, as in production) on a
 * PostgreSQL database of its own, six simulated TAP sites injecting faults per request (503,
 * 429, hangs, resets, stalls, slow, truncated and malformed answers: test/support/fleet-sites.ts
 * and test/sites/fault-injector.ts), every site harvested on the broker's schedule, and a mixed
 * load for `--minutes` (bench/soak-load.ts): discovery, plans, ADQL jobs sync and async with
 * their results read, cross-match threads, harvests through the API. Every few seconds the
 * broker's own /metrics gives its RSS, heap and event-loop delay; every minute its inspector
 * (started with --inspect on a free port) forces a full GC and reads the heap left.
 *
 * Afterwards: every error the client saw, every job in the database ending ERROR and every
 * scheduled harvest that failed is classified (explained by a fault injected at the sites
 * concerned during it, or shortly before it; else unexplained and listed); RSS and heap after
 * GC after the warm-up get a least-squares slope; samples go to a CSV, the chart to SVG and PNG.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test nice -n 5 npx tsx bench/soak.ts [--minutes 30] [--warmup-minutes 5]
 *     [--sample-s 5] [--gc-every-s 60] [--sites 6] [--seed 1] [--out bench/out/soak] [--harvest-schedule "0 * * * * *"]
 *     [--lookback-s 120] [--max-slope-mb-per-min 0.5] [--max-heap-growth-pct 2] [--mix datasets=60,plan=40,...] [--snapshots] [--cache-mb 2] [--keep-db]
 *   npx tsx bench/soak.ts --replot bench/out/soak.json [--out prefix]   (figures and chart again from a saved report)
 *
 * --snapshots: heap snapshots at the warm-up's end and after the load (<out>-warmup.heapsnapshot,
 * <out>-end.heapsnapshot, each forcing a GC and pausing the broker for seconds), and the
 * constructors that grew most between them.
 *
 * Exits 1 when an error is unexplained or memory grows after the warm-up: RSS by more than
 * --max-slope-mb-per-min, or the heap after forced GCs by more than --max-heap-growth-pct of
 * itself over the fitted window.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerFleet } from '../test/support/broker-fleet.js';
import { freshDatabase, type TestDatabase } from '../test/support/database.js';
import { closeFleetSites, fleetFederation, startFleetSites, type FleetSite } from '../test/support/fleet-sites.js';
import { gql, harvestAll } from '../test/support/fleet-client.js';
import { seededRandom } from '../test/support/random.js';
import { waitUntil } from '../test/support/wait.js';
import { FaultTimeline } from './soak-faults.js';
import { argvReader } from './support.js';
import { DEFAULT_MIX, SoakLoad, siteCaused, type Mix } from './soak-load.js';
import { conclude, printSoak, type Classified, type SoakOptions, type SoakReport } from './soak-report.js';
import { heapClasses, heapGrowth, takeSnapshot } from './soak-heap.js';
import { heapAfterGc, inspectorUrl, scrape, type Sample } from './soak-sampler.js';

export type { SoakOptions };

const MB = 1048576;

/** Bench options from the command line. */
export function soakOptions(argv: readonly string[]): SoakOptions {
  const { arg, num } = argvReader(argv);
  const minutes = num('--minutes', 30);
  const mix: Mix = { ...DEFAULT_MIX };
  for (const part of (arg('--mix') ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (!(k in mix) || !Number.isFinite(Number(v)) || Number(v) < 0) throw new Error(`--mix: "${part}" is not kind=perMinute with kind one of ${Object.keys(mix).join(', ')}`);
    mix[k as keyof Mix] = Number(v);
  }
  return {
    minutes,
    warmupMinutes: num('--warmup-minutes', Math.min(5, minutes / 3)),
    sampleS: num('--sample-s', 5),
    gcEveryS: num('--gc-every-s', 60),
    sites: num('--sites', 6),
    seed: num('--seed', 1),
    out: arg('--out') ?? 'bench/out/soak',
    harvestSchedule: arg('--harvest-schedule') ?? '0 * * * * *',
    lookbackS: num('--lookback-s', 120),
    maxSlopeMbPerMin: num('--max-slope-mb-per-min', 0.5),
    maxHeapGrowthPct: num('--max-heap-growth-pct', 2),
    snapshots: argv.includes('--snapshots'),
    cacheMb: arg('--cache-mb') === '0' ? 0 : num('--cache-mb', 2),
    mix,
    keepDb: argv.includes('--keep-db'),
  };
}

/** Run the soak once. Needs DATABASE_URL (a PostgreSQL server). */
export async function runSoak(o: SoakOptions, log: (line: string) => void): Promise<SoakReport> {
  if (!process.env.DATABASE_URL) throw new Error('the soak runs on PostgreSQL: set DATABASE_URL to a server (postgres://postgres@127.0.0.1:5432/test)');
  const loadStart = await readLoadavg();
  let db: TestDatabase | undefined;
  let sites: FleetSite[] = [];
  let fleet: BrokerFleet | undefined;
  let stderrText = '';
  const errorLines: string[] = [];
  try {
    const theDb = await freshDatabase({ recordStatements: false });
    db = theDb;
    log(`database ${theDb.url ?? ''}`);
    sites = await startFleetSites({ count: o.sites, seed: o.seed });
    const configFile = join(theDb.dataDir, 'federation.yaml');
    await writeFile(configFile, fleetFederation(sites, o.harvestSchedule));
    fleet = new BrokerFleet({
      size: 1,
      configFile,
      databaseUrl: theDb.url,
      dataDir: theDb.dataDir,
      // The inspector on a free port (printed on stderr), for the forced GCs; nothing else changes.
      // A small response cache (default 2 MB, not 64), full within the warm-up: random cones make
      // most answers new, and a 64 MB cache filling for hours is growth by design, not a leak.
      env: { LOG_LEVEL: 'warn', CONSTELLATION_CACHE_MB: String(o.cacheMb ?? 2), NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim() },
      onLog: (_i, chunk) => {
        const text = chunk.toString('utf8');
        if (stderrText.length < 10_000) stderrText += text;
        for (const line of text.split('\n')) if (/"level":(50|60)/.test(line)) errorLines.push(line.slice(0, 600));
      },
    });
    await fleet.start();
    const base = fleet.url(0);
    const pid = fleet.processes[0].pid;
    const inspector = await waitUntil(() => inspectorUrl(stderrText), (u) => u !== undefined, { timeoutMs: 10_000 }).catch(() => undefined);
    log(`broker pid ${pid} at ${base}${inspector ? `, inspector ${inspector}` : ', no inspector (no heap after GC)'}; ${sites.length} sites`);
    await prepare(base, sites);
    log('every site harvested; the broker plans every dataset');

    const timeline = new FaultTimeline(new Map(sites.map((s) => [s.id, s.faults])));
    for (const s of sites) s.faults.enabled = true;
    timeline.start();
    const t0 = Date.now();
    const samples: Sample[] = [];
    let sampling = true;
    let samplerErrors = 0;
    const sampler = (async () => {
      let lastGc = -Infinity;
      // The first scrape resets the delay histogram (start-up and harvests before the load).
      await scrape(base, 0).catch(() => undefined);
      while (sampling) {
        await sleep(o.sampleS * 1000);
        const t = Date.now() - t0;
        try {
          const s = await scrape(base, t);
          samples.push(s);
          if (inspector && t - lastGc >= o.gcEveryS * 1000 - 500) {
            lastGc = t;
            s.heapAfterGcBytes = await heapAfterGc(inspector);
          }
        } catch (err) {
          samplerErrors++;
          log(`sample at ${(t / 1000).toFixed(0)} s failed: ${(err as Error).message}`);
        }
        if (samples.length % Math.max(1, Math.round(60 / o.sampleS)) === 0 && samples.length > 0) {
          const s = samples.at(-1) as Sample;
          log(`${(t / 60_000).toFixed(1)} min: RSS ${(s.rssBytes / MB).toFixed(1)} MB, heap ${(s.heapUsedBytes / MB).toFixed(1)} MB${s.heapAfterGcBytes ? ` (${(s.heapAfterGcBytes / MB).toFixed(1)} after GC)` : ''}, delay p99 ${(s.lagP99 * 1000).toFixed(1)} ms; load ${(await readLoadavg())}`);
        }
      }
    })();

    // Heap snapshots at the warm-up's end and after the load, when asked: what a growing heap holds.
    const snapshot = async (name: string): Promise<string | undefined> => {
      if (!o.snapshots || !inspector) return undefined;
      const path = `${o.out}-${name}.heapsnapshot`;
      const started = Date.now();
      await takeSnapshot(inspector, path);
      log(`heap snapshot ${path} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return path;
    };
    const firstSnapshot = sleep(o.warmupMinutes * 60_000).then(() => snapshot('warmup')).catch((err: Error) => {
      log(`heap snapshot at the warm-up's end failed: ${err.message}`);
      return undefined;
    });
    const load = new SoakLoad({ base, sites: o.sites, mix: o.mix, timeline, lookbackMs: o.lookbackS * 1000, random: seededRandom(o.seed), log });
    await load.run(o.minutes * 60_000);
    const durationMs = Date.now() - t0;
    sampling = false;
    await sampler;
    const snapshots = [await firstSnapshot, await snapshot('end').catch(() => undefined)];
    const heapGrowthTop = snapshots[0] && snapshots[1] ? heapGrowth(await heapClasses(snapshots[0]), await heapClasses(snapshots[1])) : undefined;
    timeline.stop();
    for (const s of sites) s.faults.enabled = false;
    if (samplerErrors) log(`${samplerErrors} samples failed`);
    load.classify();

    const jobs = await classifyJobs(theDb, timeline, o, t0);
    const scheduledHarvests = await classifyHarvests(theDb, timeline, o, t0);
    return await conclude({
      options: o,
      loadavg: { start: loadStart, end: await readLoadavg() },
      durationMs,
      samples,
      samplerErrors,
      load: load.report,
      jobs,
      scheduledHarvests,
      faults: timeline.totals(),
      faultEvents: timeline.events.map((e) => ({ ...e, since: e.since - t0, at: e.at - t0 })),
      ...(heapGrowthTop ? { heapGrowth: heapGrowthTop } : {}),
      brokerErrorLines: errorLines,
    });
  } finally {
    await fleet?.close();
    await closeFleetSites(sites);
    if (o.keepDb && db) {
      log(`database kept: ${db.url ?? ''}`);
      await db.pool.end();
    } else await db?.close();
  }
}

/** Harvest every site once (faults off) and wait until the broker plans every dataset at its three sites. */
async function prepare(base: string, sites: readonly FleetSite[]): Promise<void> {
  await harvestAll(base, sites);
  await waitUntil(
    async () => {
      const counts: number[] = [];
      for (let d = 0; d < sites.length; d++) {
        const body = await gql<{ plan: { candidates: { eligible: boolean }[] } }>(base, 'query($d: [String!]!) { plan(request: { kind: QUERY, datasets: $d }) { candidates { eligible } } }', { d: [`fleet.d${d}`] });
        counts.push(body.plan.candidates.filter((c) => c.eligible).length);
      }
      return counts;
    },
    (counts) => counts.every((n) => n >= 3),
    { intervalMs: 250, describe: (counts) => `the broker plans datasets at ${counts.join(', ')} sites, not 3 each` },
  );
}


/** Every job created during the load, by state; each ERROR explained by faults at its site and its datasets' sites. */
async function classifyJobs(db: TestDatabase, timeline: FaultTimeline, o: SoakOptions, t0: number): Promise<SoakReport['jobs']> {
  const { rows } = await db.pool.query<{ id: string; state: string; site_id: string | null; error_code: string | null; error_message: string | null; created: string; finished: string | null; request: string; plan: string }>(
    `SELECT id, state, site_id, error_code, error_message, (extract(epoch FROM created_at) * 1000)::float8 AS created, (extract(epoch FROM finished_at) * 1000)::float8 AS finished,
            request::text AS request, plan::text AS plan
       FROM jobs WHERE created_at >= to_timestamp($1 / 1000.0)`, [t0]);
  const byState: Record<string, number> = {};
  const errors: Classified[] = [];
  for (const r of rows) {
    byState[r.state] = (byState[r.state] ?? 0) + 1;
    if (r.state !== 'ERROR') continue;
    // Its candidates (a thread step's request names no dataset, its plan names the sites), its site, its datasets' holders.
    const sites = new Set<string>(r.site_id ? [r.site_id] : []);
    for (const m of r.plan.matchAll(/"siteId":\s*"([^"]+)"/g)) sites.add(m[1]);
    for (const m of r.request.matchAll(/fleet\.d(\d+)/g)) for (let k = 0; k < 3; k++) sites.add(`s${(Number(m[1]) + k) % o.sites}`);
    const code = r.error_code ?? 'NO_ERROR_CODE';
    const e = timeline.explain(siteCaused(code), [...sites], Number(r.created), Number(r.finished ?? Date.now()), o.lookbackS * 1000);
    errors.push({ what: `job ${r.id} at ${r.site_id ?? '-'}`, code, message: (r.error_message ?? '').slice(0, 400), ...e });
  }
  return { byState, errors };
}

/** Every harvest run started during the load, by outcome; each failed one explained by faults at its site. */
async function classifyHarvests(db: TestDatabase, timeline: FaultTimeline, o: SoakOptions, t0: number): Promise<SoakReport['scheduledHarvests']> {
  const { rows } = await db.pool.query<{ id: string; site_id: string; trigger: string; outcome: string; error_code: string | null; error_message: string | null; started: string; finished: string | null }>(
    `SELECT id, site_id, trigger, outcome, error_code, error_message, (extract(epoch FROM started_at) * 1000)::float8 AS started, (extract(epoch FROM finished_at) * 1000)::float8 AS finished
       FROM harvest_runs WHERE started_at >= to_timestamp($1 / 1000.0)`, [t0]);
  const byOutcome: Record<string, number> = {};
  const errors: Classified[] = [];
  for (const r of rows) {
    byOutcome[`${r.trigger}:${r.outcome}`] = (byOutcome[`${r.trigger}:${r.outcome}`] ?? 0) + 1;
    if (r.outcome === 'OK' || r.outcome === 'NOT_MODIFIED') continue;
    const code = r.error_code ?? r.outcome;
    const e = timeline.explain(siteCaused(code), [r.site_id], Number(r.started), Number(r.finished ?? Date.now()), o.lookbackS * 1000);
    errors.push({ what: `harvest ${r.id} of ${r.site_id} (${r.trigger}) ${r.outcome}`, code, message: (r.error_message ?? '').slice(0, 400), ...e });
  }
  return { byOutcome, errors };
}

async function readLoadavg(): Promise<string> {
  const { loadavg } = await import('node:os');
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const replot = argv.indexOf('--replot');
  let report: SoakReport;
  if (replot >= 0) {
    // Figures, CSV and chart again from a saved report (its samples and classified errors), under --out or its own name.
    const saved = JSON.parse(await readFile(argv[replot + 1], 'utf8')) as SoakReport;
    const out = argv.includes('--out') ? soakOptions(argv).out : saved.options.out;
    report = await conclude({ ...saved, options: { ...saved.options, out } });
  } else report = await runSoak(soakOptions(argv), (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`));
  printSoak(report);
  process.exit(report.verdict.pass ? 0 : 1);
}
