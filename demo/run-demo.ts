/**
 * `constellation demo`: two simulated centres (a Gaia-like and a Pan-STARRS-like catalogue with a
 * known truth), a real broker process on a temporary embedded database, and the cross-match run
 * through the broker's public GraphQL API and /results, as a user would. It prints every
 * strategy the planner weighed, the chosen one, the steps, rows and bytes moved, the pairs found
 * against the truth, and timings; it exits 0 when recall and precision are both 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAIN_PATCH, POLE_PATCH, WRAP_PATCH, truthInCone, type TruePair } from './catalogues.js';
import { DEMO_DATASETS, startDemoCentres, type DemoCentres } from './demo-centres.js';
import { rowCount } from './table.js';
import { freePort, graphql, ready } from './broker-client.js';

/** What the demo is asked to do. */
export interface DemoOptions {
  /** Leave the centres and the broker running (until Ctrl-C), printing the URL. */
  keep?: boolean;
  /** Rows per catalogue as a share of the full demo (tests use small ones). */
  scale?: number;
  /** Where lines go (default stdout). */
  print?: (line: string) => void;
}

/** One region of the demo: a cone and what it shows. */
interface DemoRegion {
  what: string;
  ra: number;
  dec: number;
  radiusDeg: number;
}

// The main patch whole, the patch across RA 0/360, and the polar cap.
const REGIONS: DemoRegion[] = [
  { what: 'the 10°×10° patch', ra: (MAIN_PATCH.raMin + MAIN_PATCH.raMax) / 2, dec: (MAIN_PATCH.decMin + MAIN_PATCH.decMax) / 2, radiusDeg: Math.hypot(5, 5) + 0.01 },
  { what: 'the patch across RA 0/360', ra: 0, dec: (WRAP_PATCH.decMin + WRAP_PATCH.decMax) / 2, radiusDeg: Math.hypot(1, 1) + 0.01 },
  { what: 'the polar cap', ra: 0, dec: 90, radiusDeg: 90 - POLE_PATCH.decMin + 0.01 },
];

interface ThreadView {
  id: string;
  state: string;
  results: string | null;
  resultRows: number | null;
  error: { code: string; message: string } | null;
  progress: { stepsDone: number; stepsTotal: number; rows: number; bytes: number };
  plan: { candidates: { strategy: string; chosen: boolean; eligible: boolean; leftSite: string | null; rightSite: string | null; estimatedBytesMoved: number; steps: number; reasons: { message: string }[] }[] } | null;
}

const THREAD_FIELDS = `id state results resultRows error { code message } progress { stepsDone stepsTotal rows bytes }
  plan { candidates { strategy chosen eligible leftSite rightSite estimatedBytesMoved steps reasons { message } } }`;

/** Run the demo; resolves to the exit code. */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'constellation-demo-'));
  let centres: DemoCentres | undefined;
  let broker: ChildProcess | undefined;
  const stop = async () => {
    if (broker && broker.exitCode === null) {
      const exited = new Promise((r) => broker?.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    await centres?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const scale = options.scale ?? 1;
    print('Starting two simulated centres (generating the catalogues and their truth)…');
    centres = await startDemoCentres({ catalogues: { gaiaRows: Math.round(200_000 * scale), ps1Rows: Math.round(240_000 * scale) } });
    print(`  Gaia-like: ${rowCount(centres.catalogues.gaia).toLocaleString('en')} rows at ${centres.urls.gaia}`);
    print(`  Pan-STARRS-like: ${rowCount(centres.catalogues.ps1).toLocaleString('en')} rows at ${centres.urls.ps1}`);
    print(`  ${centres.truth.length.toLocaleString('en')} true pairs within ${centres.catalogues.options.radiusArcsec}″ (generated in ${centres.timings.generateMs} ms, centres up in ${centres.timings.startMs} ms)`);

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const federation = join(dir, 'federation.yaml');
    // A development federation on this machine only: the demo harvests through the API with no token.
    await writeFile(federation, centres.federationYaml('demo').replace(/^sites:/m, 'registration: { open: true }\nsites:'));
    print(`Starting a broker at ${base} on a temporary embedded database…`);
    // The compiled CLI beside this file; from the sources (tests run them through tsx), the source CLI.
    const cli = import.meta.url.endsWith('.ts') ? ['--import', 'tsx', fileURLToPath(new URL('../broker/cli/run.ts', import.meta.url))] : [fileURLToPath(new URL('../broker/cli/run.js', import.meta.url))];
    broker = spawn(process.execPath, [...cli, 'serve'], {
      // Always its own temporary embedded database, even when the user's shell names a PostgreSQL.
      env: { ...process.env, DATABASE_URL: '', PORT: String(port), HOST: '127.0.0.1', CONSTELLATION_CONFIG: federation, CONSTELLATION_DATA: join(dir, 'data'), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await ready(base, broker);
    for (const site of ['gaia-centre', 'ps1-centre']) {
      const { harvest } = await graphql<{ harvest: { outcome: string; errorMessage: string | null } }>(base, `mutation($s: ID!) { harvest(siteId: $s) { outcome errorMessage } }`, { s: site });
      if (harvest.outcome !== 'OK') throw new Error(`harvesting ${site}: ${harvest.outcome} ${harvest.errorMessage ?? ''}`);
    }
    print('  both centres harvested: the broker knows where each catalogue is');

    let found = 0;
    let expected = 0;
    let correct = 0;
    for (const region of REGIONS) {
      const t0 = performance.now();
      const { crossmatch } = await graphql<{ crossmatch: ThreadView }>(base, `mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD_FIELDS} } }`, {
        i: {
          left: { dataset: DEMO_DATASETS.gaia, columns: ['source_id'] },
          right: { dataset: DEMO_DATASETS.ps1, columns: ['objid'] },
          region: { cone: { ra: region.ra, dec: region.dec, radiusDeg: region.radiusDeg } },
          radiusArcsec: centres.catalogues.options.radiusArcsec,
          mode: 'BEST',
        },
      });
      print(`\nCross-match in ${region.what} (cone ${region.ra}, ${region.dec}, ${region.radiusDeg.toFixed(2)}°), thread ${crossmatch.id}`);
      for (const c of crossmatch.plan?.candidates ?? []) {
        const where = [c.leftSite, c.rightSite].filter(Boolean).join(' + ');
        print(`  ${c.chosen ? '→' : ' '} ${c.strategy.padEnd(9)} ${where.padEnd(25)} ${c.eligible ? `${formatBytes(c.estimatedBytesMoved).padStart(9)} moved, ${c.steps} steps` : `not eligible: ${c.reasons.map((r) => r.message).join('; ')}`}`);
      }
      const done = await finished(base, crossmatch.id, print);
      if (done.state !== 'COMPLETED' || !done.results) throw new Error(`thread ${done.id} ended ${done.state}: ${done.error?.code ?? ''} ${done.error?.message ?? ''}`);
      const pairs = await resultPairs(`${base}${done.results}`);
      const truth = new Set(truthInCone(centres.truth, region.ra, region.dec, region.radiusDeg).map(pairKey));
      const hits = pairs.filter((p) => truth.has(p)).length;
      found += pairs.length;
      expected += truth.size;
      correct += hits;
      print(`  ${done.progress.stepsDone}/${done.progress.stepsTotal} steps, ${done.progress.rows.toLocaleString('en')} rows and ${formatBytes(done.progress.bytes)} moved; ` +
        `${pairs.length.toLocaleString('en')} pairs, ${hits.toLocaleString('en')} of ${truth.size.toLocaleString('en')} true (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    const recall = expected === 0 ? 1 : correct / expected;
    const precision = found === 0 ? 1 : correct / found;
    print(`\nRecall ${recall.toFixed(4)}, precision ${precision.toFixed(4)} over ${expected.toLocaleString('en')} true pairs; ${((performance.now() - started) / 1000).toFixed(1)} s in all.`);
    if (options.keep) {
      print(`\nStill running: GraphiQL at ${base}/graphiql (Ctrl-C to stop).`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
    return recall === 1 && precision === 1 ? 0 : 1;
  } finally {
    await stop();
  }
}

/** "source_id|objID" as the result's CSV spells them (ids past 2^53 kept as text). */
function pairKey(p: Pick<TruePair, 'sourceId' | 'objId'>): string {
  return `${p.sourceId}|${p.objId}`;
}

/** The result's pairs read from its CSV (never through JSON numbers: the ids pass 2^53). */
async function resultPairs(url: string): Promise<string[]> {
  const res = await fetch(`${url}${url.includes('?') ? '&' : '?'}format=csv`);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const [header, ...lines] = (await res.text()).trim().split(/\r?\n/);
  const columns = header.split(',').map((c) => c.toLowerCase());
  const left = columns.findIndex((c) => c.endsWith('source_id'));
  const right = columns.findIndex((c) => c.endsWith('objid'));
  if (left < 0 || right < 0) throw new Error(`the result has no source_id and objid columns (it has ${header})`);
  return lines.filter(Boolean).map((line) => {
    const cells = line.split(',');
    return `${cells[left]}|${cells[right]}`;
  });
}

/** The thread once it reaches a final state, printing its progress whenever it changes. */
async function finished(base: string, id: string, print: (line: string) => void): Promise<ThreadView> {
  let last = '';
  for (;;) {
    const { thread } = await graphql<{ thread: ThreadView }>(base, `query($id: ID!) { thread(id: $id) { ${THREAD_FIELDS} } }`, { id });
    if (['COMPLETED', 'ERROR', 'ABORTED'].includes(thread.state)) return thread;
    const line = `  … ${thread.state.toLowerCase()}: ${thread.progress.stepsDone}/${thread.progress.stepsTotal} steps, ${thread.progress.rows.toLocaleString('en')} rows, ${formatBytes(thread.progress.bytes)}`;
    if (line !== last) print(line);
    last = line;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${Math.round(n)} B`;
}
