/**
 * Publishing at federation scale (issue 13, point 3): 1,000 capability documents of 100
 * replicas each (100,000 replicas, with columns and MOC coverage from the registry bench's
 * generator) published one after another, in two modes, each run on a fresh database:
 *
 * - store: publishDocument alone, one transaction per document, on documents validated beforehand;
 * - route: Publisher.publish, wired by createServices as buildApp wires it, the function
 *   PUT /sites/:id/capabilities and the harvester call: validation, the store's transaction, and
 *   the in-memory registry view brought up to date before the call returns.
 *
 * Three passes per run: first (every document into an empty registry), changed (every document
 * again with a harvest's small changes: asOf, 5 % of row counts, one coverage, one column list,
 * one dataset swapped for another, free cores) and same (every document again, only asOf moved).
 * Printed per mode and pass: min and median over the runs; for the route, the view's refresh
 * time as the view reports it (each refresh once, however many publishes shared it) and the
 * number of refreshes; validation of one pass measured apart.
 *
 * `--concurrency N` (default 1) also publishes N documents at a time, as the harvester does with
 * `harvest.concurrency` sites (4 by default): each run then runs the three passes one document
 * at a time and again N at a time, each on a fresh database, alternated, so both figures come
 * from one run.
 *
 *   npx tsx bench/publish.ts [--documents 1000] [--replicas 100] [--columns 2] [--runs 3] [--mode store|route|both] [--concurrency N]
 *
 * With DATABASE_URL a database of its own on that server (dropped afterwards), else PGlite.
 */
import { pathToFileURL } from 'node:url';
import { parseConfig } from '../broker/config/load.js';
import { createServices, type Services } from '../broker/factory.js';
import { checkDocument } from '../broker/services/publisher.js';
import { SMoc } from '../registry/coverage/moc.js';
import type { CapabilityDocument, ColumnDoc } from '../registry/model/capability.js';
import { migrate } from '../registry/store/migrate.js';
import { publishDocument } from '../registry/store/publish.js';
import { backend, freshDatabase } from '../test/support/database.js';
import { seededRandom as random } from '../test/support/random.js';
import { siteDocument } from './registry-graphql.js';

export interface PublishBenchOptions {
  documents: number;
  replicasPerDocument: number;
  /** Canonical datasets the replicas are drawn from. */
  datasets: number;
  /** Columns per replica: the generator's 2 (ra, dec), or more in the sim fleet's shape (id, ra, dec, mag_N). */
  columns: number;
  runs: number;
  seed: number;
  /** Documents published at a time; above 1, every run makes the passes one at a time and then again this many at a time. */
  concurrency: number;
}

export const PUBLISH_DEFAULTS: PublishBenchOptions = { documents: 1000, replicasPerDocument: 100, datasets: 20_000, columns: 2, runs: 3, seed: 20261123, concurrency: 1 };

/** The passes of one repetition, in the order they run. */
export const PASSES = ['first', 'changed', 'same'] as const;
export type PassName = (typeof PASSES)[number];

export interface PassTiming {
  /** Wall time of the whole pass. */
  seconds: number;
  /** Time the in-memory registry view spent catching up after each publish (its own report). */
  refreshSeconds: number;
  /** Slowest single publish. */
  maxMs: number;
  /** Refreshes of the view the pass caused (at most one per publish; fewer when concurrent publishes shared one). */
  refreshes: number;
  /** Of those, how many took the publish from itself (PlannerView.published) rather than loading from the database. */
  fromPublish: number;
}

export interface PublishBenchResult {
  backend: string;
  options: PublishBenchOptions;
  replicas: number;
  columns: number;
  /** Validation of every document of a pass alone (checkDocument), measured apart. */
  validateSeconds: number;
  /** Per mode, one entry per repetition (empty for a mode not run): one document at a time. */
  runs: Record<PublishMode, Record<PassName, PassTiming>[]>;
  /** The same with `options.concurrency` documents at a time (empty when it is 1). */
  concurrent: Record<PublishMode, Record<PassName, PassTiming>[]>;
}

const DAY_MS = 86_400_000;

/** The sim fleet's column shape (bench/sim-fleet.ts): an id, ra, dec and magnitudes. */
function fleetColumns(n: number): ColumnDoc[] {
  const base: ColumnDoc[] = [
    { name: 'id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ];
  return [...base, ...Array.from({ length: Math.max(0, n - 3) }, (_, c) => ({ name: `mag_${c}`, datatype: 'float', unit: 'mag', ucd: 'phot.mag' }))].slice(0, n);
}

/** The documents of the first pass. */
export function benchDocuments(opts: PublishBenchOptions): CapabilityDocument[] {
  const rnd = random(opts.seed);
  const asOf = new Date(Date.now() - 3 * DAY_MS).toISOString();
  return Array.from({ length: opts.documents }, (_, i) => {
    const doc = siteDocument(i, { replicasPerSite: opts.replicasPerDocument, datasets: opts.datasets }, rnd);
    doc.asOf = asOf;
    doc.compute = [{ id: 'batch', kind: 'batch', cores: 512, memoryGb: 2048, freeCores: Math.floor(rnd() * 512), queueWaitS: 60 }];
    doc.images = [{ ref: 'images.example.org/astro/base:1.0', arch: 'amd64', types: ['headless'] }];
    if (opts.columns !== 2) for (const d of doc.datasets) d.columns = fleetColumns(opts.columns);
    return doc;
  });
}

/**
 * `doc` as its site would send it at its next harvest: asOf an hour later, 5 % of row counts,
 * one coverage and one column list changed, one dataset dropped and another added, free cores moved.
 */
export function revised(doc: CapabilityDocument, opts: PublishBenchOptions, rnd: () => number): CapabilityDocument {
  const next = structuredClone(doc);
  next.asOf = new Date(Date.parse(doc.asOf) + 3_600_000).toISOString();
  const n = next.datasets.length;
  for (let k = 0; k < Math.max(1, Math.round(n / 20)); k++) next.datasets[Math.floor(rnd() * n)].rows = Math.floor(rnd() * 1e9);
  next.datasets[Math.floor(rnd() * n)].coverage = SMoc.fromCone(rnd() * 360, Math.asin(2 * rnd() - 1) * 180 / Math.PI, 2 + rnd() * 13, 5).toAscii();
  const widened = next.datasets[Math.floor(rnd() * n)];
  widened.columns = [...(widened.columns ?? []), { name: 'flags', datatype: 'int', ucd: 'meta.code' }];
  const held = new Set(next.datasets.map((d) => d.id));
  let d = Math.floor(rnd() * opts.datasets);
  while (held.has(`survey${Math.floor(d / 100)}.table${d % 100}`)) d = (d + 1) % opts.datasets;
  const dropped = next.datasets.splice(Math.floor(rnd() * n), 1)[0];
  next.datasets.push({ ...structuredClone(dropped), id: `survey${Math.floor(d / 100)}.table${d % 100}`, table: `s${Math.floor(d / 100)}.t${d % 100}` });
  next.compute[0].freeCores = Math.floor(rnd() * 512);
  return next;
}

/** `doc` with only asOf moved on (a harvest of a site that changed nothing). */
function resent(doc: CapabilityDocument): CapabilityDocument {
  return { ...doc, asOf: new Date(Date.parse(doc.asOf) + 3_600_000).toISOString() };
}

/** How a pass publishes: the whole route path, or the store's transaction alone. */
export type PublishMode = 'route' | 'store';

/**
 * Publish every document, `concurrency` at a time (in order when 1). `route`: through the
 * publisher, as PUT /sites/:id/capabilities does (validation, the store's transaction, the
 * registry view brought up to date before the answer), the view's refresh time summed from its
 * own report, each refresh once. `store`: publishDocument alone, on documents validated beforehand.
 */
async function publishAll(mode: PublishMode, services: Services, docs: readonly CapabilityDocument[], concurrency: number): Promise<PassTiming> {
  const started = performance.now();
  const builds = new Set<NonNullable<Services['planner']['lastBuild']>>();
  let maxMs = 0;
  let next = 0;
  const worker = async () => {
    while (next < docs.length) {
      const doc = docs[next++];
      const t = performance.now();
      if (mode === 'store') {
        await publishDocument(services.pool, doc, 'publish');
      } else {
        await services.publisher.publish(doc.site.id, doc, 'publish');
        // The build that answered this publish (publishes that shared one see the same object).
        if (services.planner.lastBuild) builds.add(services.planner.lastBuild);
      }
      maxMs = Math.max(maxMs, performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  const refreshMs = [...builds].reduce((sum, b) => sum + b.durationMs, 0);
  const fromPublish = [...builds].filter((b) => b.fromPublish === true).length;
  return { seconds: (performance.now() - started) / 1000, refreshSeconds: refreshMs / 1000, maxMs, refreshes: builds.size, fromPublish };
}

/** The three passes of one mode on a fresh database. */
async function runPasses(mode: PublishMode, passes: Record<PassName, readonly CapabilityDocument[]>, concurrency: number, progress: (m: string) => void): Promise<Record<PassName, PassTiming>> {
  const database = await freshDatabase({ recordStatements: false });
  try {
    await migrate(database.pool);
    const yaml = 'federation: { name: bench }\nregistration: { open: true }\nsites: []\n';
    // The broker's own wiring (what buildApp gives the publish route): the publisher, and the
    // registry view it brings up to date before a publish is answered.
    const services = createServices(parseConfig(yaml, { LOG_LEVEL: 'error' }), database.pool, database.kind);
    await services.planner.refresh(database.pool);
    const timings = {} as Record<PassName, PassTiming>;
    for (const name of PASSES) {
      timings[name] = await publishAll(mode, services, passes[name], concurrency);
      progress(`${mode} ${name} (${concurrency} at a time): ${timings[name].seconds.toFixed(1)} s`);
    }
    return timings;
  } finally {
    await database.close();
  }
}

/** Run the passes `opts.runs` times in each mode, the modes interleaved, each run on a fresh database. */
export async function benchPublish(options: Partial<PublishBenchOptions> = {}, modes: readonly PublishMode[] = ['store', 'route']): Promise<PublishBenchResult> {
  const opts = { ...PUBLISH_DEFAULTS, ...options };
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new Error(`--concurrency must be a whole number of at least 1, not ${opts.concurrency}`);
  const progress = (m: string) => process.stderr.write(`  [publish] ${m}\n`);
  const first = benchDocuments(opts);
  const rnd = random(opts.seed + 1);
  const changed = first.map((d) => revised(d, opts, rnd));
  const raw: Record<PassName, CapabilityDocument[]> = { first, changed, same: changed.map(resent) };
  // What the store is given: documents as validation leaves them (MOCs in normal form).
  const t = performance.now();
  const validated = {} as Record<PassName, CapabilityDocument[]>;
  for (const name of PASSES) validated[name] = raw[name].map((doc) => checkDocument(undefined, doc.site.id, doc));
  const validateSeconds = (performance.now() - t) / 1000 / PASSES.length;

  const runs: Record<PublishMode, Record<PassName, PassTiming>[]> = { store: [], route: [] };
  const concurrent: Record<PublishMode, Record<PassName, PassTiming>[]> = { store: [], route: [] };
  for (let run = 0; run < opts.runs; run++) {
    for (const mode of modes) {
      progress(`run ${run + 1}/${opts.runs}`);
      const docs = mode === 'store' ? validated : raw;
      runs[mode].push(await runPasses(mode, docs, 1, progress));
      if (opts.concurrency > 1) concurrent[mode].push(await runPasses(mode, docs, opts.concurrency, progress));
    }
  }
  return {
    backend: backend === 'postgresql' ? 'PostgreSQL' : 'embedded PGlite',
    options: opts,
    replicas: first.reduce((n, d) => n + d.datasets.length, 0),
    columns: first.reduce((n, d) => n + d.datasets.reduce((m, x) => m + (x.columns?.length ?? 0), 0), 0),
    validateSeconds,
    runs,
    concurrent,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Print min and median per mode and pass, one at a time and concurrently, and where the route's time went. */
export function printPublish(r: PublishBenchResult): void {
  const o = r.options;
  console.log(`publish: ${o.documents} documents, ${r.replicas.toLocaleString('en-US')} replicas, ${r.columns.toLocaleString('en-US')} columns (${r.backend}, ${Math.max(r.runs.store.length, r.runs.route.length)} runs)`);
  console.log(`  validation alone (checkDocument, every document of a pass once): ${r.validateSeconds.toFixed(1)} s`);
  for (const mode of ['store', 'route'] as const) {
    const what = mode === 'store' ? 'store: publishDocument alone (one transaction per document)' : 'route: Publisher.publish (validation + store + registry view refresh), as PUT /sites/:id/capabilities';
    printRuns(r, `${what}, one at a time`, mode, r.runs[mode]);
    printRuns(r, `${what}, ${o.concurrency} at a time`, mode, r.concurrent[mode]);
  }
}

/** Min and median of each pass over `runs`. */
function printRuns(r: PublishBenchResult, title: string, mode: PublishMode, runs: readonly Record<PassName, PassTiming>[]): void {
  if (runs.length === 0) return;
  console.log(`  ${title}`);
  for (const pass of PASSES) {
    const secs = runs.map((x) => x[pass].seconds);
    const m = median(secs);
    const at = runs.find((x) => x[pass].seconds === m)?.[pass];
    if (at === undefined) continue;
    // The target is for PostgreSQL; the embedded database is reported without one.
    const target = pass !== 'same' && r.backend === 'PostgreSQL' ? `  (target < 20 s: ${m < 20 ? 'met' : 'missed'})` : '';
    const refresh = mode === 'route' ? `  view refresh ${at.refreshSeconds.toFixed(1)} s in ${at.refreshes} refreshes (${at.fromPublish} from the publish)` : '';
    console.log(`    ${pass.padEnd(8)} min ${Math.min(...secs).toFixed(1).padStart(6)} s  median ${m.toFixed(1).padStart(6)} s  ` +
      `${(r.replicas / m).toFixed(0).padStart(6)} replicas/s${refresh}  slowest publish ${at.maxMs.toFixed(0)} ms${target}`);
  }
}

/** `--name value` from the command line as a number, or `fallback`. */
function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const mode = process.argv.indexOf('--mode') >= 0 ? process.argv[process.argv.indexOf('--mode') + 1] : 'both';
  printPublish(await benchPublish({
    documents: numberArg('documents', PUBLISH_DEFAULTS.documents),
    replicasPerDocument: numberArg('replicas', PUBLISH_DEFAULTS.replicasPerDocument),
    columns: numberArg('columns', PUBLISH_DEFAULTS.columns),
    runs: numberArg('runs', PUBLISH_DEFAULTS.runs),
    concurrency: numberArg('concurrency', PUBLISH_DEFAULTS.concurrency),
  }, mode === 'store' || mode === 'route' ? [mode] : ['store', 'route']));
}
