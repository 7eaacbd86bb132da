/**
 * The TAP facade against its member directly: the same 100,000-row query asked of the DaCHS
 * peer's /tap and of the broker's /tap (DaCHS its only member), sync and async (UWS), in one
 * run; each broker form's median over the same direct form's median, and the broker's RSS
 * sampled while it streams. The broker runs in a child process (this file with --serve), on
 * the embedded PGlite or, with DATABASE_URL, on a fresh PostgreSQL database, with the shipped
 * job settings.
 *
 *   npx tsx bench/tap-facade.ts [--rows 100000] [--runs 5]
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';

/** One form's timings (ms). */
export interface FormStats {
  label: string;
  medianMs: number;
  minMs: number;
  bytes: number;
}

/** What the bench measured. */
export interface TapFacadeResult {
  rows: number;
  runs: number;
  database: string;
  forms: Record<'directSync' | 'brokerSync' | 'directAsync' | 'brokerAsync', FormStats>;
  ratios: { sync: number; async: number };
  /** The broker process's resident memory: before the runs, and the peak while streaming. */
  rssMB: { idle: number; peakStreaming: number };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Read a response to its end, counting bytes (never holding it). */
async function drain(res: Response): Promise<number> {
  if (!res.ok) throw new Error(`${res.url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) n += chunk.byteLength;
  return n;
}

const form = (q: string, rows: number, extra: Record<string, string> = {}) => new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: q, MAXREC: String(rows), ...extra });

async function syncQuery(base: string, q: string, rows: number): Promise<number> {
  return drain(await fetch(`${base}/sync`, { method: 'POST', body: form(q, rows) }));
}

/** Create, run (PHASE=RUN, posted again for services that ignore it at creation), wait with WAIT, read the result. */
async function asyncQuery(base: string, q: string, rows: number): Promise<number> {
  const created = await fetch(`${base}/async`, { method: 'POST', body: form(q, rows, { PHASE: 'RUN' }), redirect: 'manual' });
  const job = new URL(created.headers.get('location')!, base).toString();
  await created.arrayBuffer();
  await (await fetch(`${job}/phase`, { method: 'POST', body: new URLSearchParams({ PHASE: 'RUN' }), redirect: 'manual' })).arrayBuffer();
  for (;;) {
    const doc = await (await fetch(`${job}?WAIT=30`)).text();
    const phase = /<uws:phase>(\w+)<\/uws:phase>/.exec(doc)?.[1];
    if (phase === 'COMPLETED') break;
    if (phase === 'ERROR' || phase === 'ABORTED') throw new Error(`${job} ended ${phase}`);
    // A service that does not block on WAIT (a QUEUED job at DaCHS) is asked again shortly.
    await new Promise((r) => setTimeout(r, 50));
  }
  return drain(await fetch(`${job}/results/result`));
}

async function rssMB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Run the bench. */
export async function runTapFacadeBench(options: { rows?: number; runs?: number } = {}): Promise<TapFacadeResult> {
  const rows = options.rows ?? 100_000;
  const runs = options.runs ?? 5;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the broker process exited (${code}) before it listened`)));
    });
    const { url, database } = JSON.parse(line) as { url: string; database: string };
    const broker = `${url}/tap`;
    const q = `SELECT TOP ${rows} source_id, ra, dec, phot_g_mean_mag, parallax, pmra, pmdec FROM gaia.gaia_source`;
    const forms = {
      directSync: () => syncQuery(DACHS, q, rows),
      brokerSync: () => syncQuery(broker, q, rows),
      directAsync: () => asyncQuery(DACHS, q, rows),
      brokerAsync: () => asyncQuery(broker, q, rows),
    };
    const names = Object.keys(forms) as (keyof typeof forms)[];
    const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof forms, number[]>;
    const bytes = {} as Record<keyof typeof forms, number>;
    for (const n of names) bytes[n] = await forms[n](); // warm-up
    const idle = await rssMB(child.pid!);
    let peak = idle;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssMB(child.pid!).catch(() => 0));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    for (let round = 0; round < runs; round++) {
      // The order rotates each round, so no form always runs on a warmer or busier machine.
      for (let k = 0; k < names.length; k++) {
        const n = names[(k + round) % names.length];
        const t0 = performance.now();
        bytes[n] = await forms[n]();
        times[n].push(performance.now() - t0);
      }
    }
    sampling = false;
    await sampler;
    const stats = (n: keyof typeof forms, label: string): FormStats => ({ label, medianMs: median(times[n]), minMs: Math.min(...times[n]), bytes: bytes[n] });
    const result: TapFacadeResult = {
      rows,
      runs,
      database,
      forms: {
        directSync: stats('directSync', 'DaCHS /tap/sync'),
        brokerSync: stats('brokerSync', 'broker /tap/sync'),
        directAsync: stats('directAsync', 'DaCHS /tap/async'),
        brokerAsync: stats('brokerAsync', 'broker /tap/async'),
      },
      ratios: { sync: median(times.brokerSync) / median(times.directSync), async: median(times.brokerAsync) / median(times.directAsync) },
      rssMB: { idle: Math.round(idle), peakStreaming: Math.round(peak) },
    };
    return result;
  } finally {
    child.kill('SIGTERM');
  }
}

/** The child: a broker with DaCHS as its only member, harvested, listening; prints {url, database}. */
async function serve(): Promise<void> {
  const { buildApp } = await import('../broker/app.js');
  const { parseConfig } = await import('../broker/config/load.js');
  const { freshDatabase } = await import('../test/support/database.js');
  const db = await freshDatabase();
  const config = parseConfig(`federation: { name: tap-bench }\nsites:\n  - { id: dachs, name: GAVO DaCHS peer, adapter: tap, url: "${DACHS}" }\n`, {}, 'bench');
  const app = await buildApp({ ...config, logLevel: 'warn' }, { database: db, logger: false });
  const run = await app.services.harvester.harvest('dachs', 'cli', { confirm: false });
  if (run.outcome !== 'OK') throw new Error(`harvesting DaCHS failed: ${run.errorMessage}`);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(JSON.stringify({ url, database: process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite' }) + '\n');
  process.once('SIGTERM', () => void app.close().then(() => db.close()).finally(() => process.exit(0)));
}

if (process.argv.includes('--serve')) {
  await serve();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runTapFacadeBench({ rows: arg('rows', 100_000), runs: arg('runs', 5) });
  console.log(`TAP facade, ${r.rows} rows, ${r.runs} runs (${r.database}), query of DaCHS directly and through the broker`);
  for (const f of Object.values(r.forms)) console.log(`  ${f.label.padEnd(20)} median ${f.medianMs.toFixed(0).padStart(6)} ms   min ${f.minMs.toFixed(0).padStart(6)} ms   ${f.bytes} bytes`);
  console.log(`  ratio sync  ${r.ratios.sync.toFixed(2)}x   (target < 1.1x)`);
  console.log(`  ratio async ${r.ratios.async.toFixed(2)}x   (target < 1.1x)`);
  console.log(`  broker RSS  idle ${r.rssMB.idle} MB, peak while streaming ${r.rssMB.peakStreaming} MB`);
}
