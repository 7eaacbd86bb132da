/**
 * VOTable reader throughput against astropy.io.votable on the same files, in the same run.
 *
 *   npx tsx bench/votable.ts [--rows 1000000] [--no-astropy] [--keep]
 *
 * Generates a Gaia-like table (source_id long, ra/dec double, parallax/pmra/pmdec double with
 * some nulls, phot_g_mean_mag float, designation char(*)) with our writer as BINARY2 and as
 * TABLEDATA in a temporary directory, reads each with `readVOTable` from a file stream, then
 * times `astropy.io.votable.parse` (Debian's /usr/bin/python3) on the same file.
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { readVOTable, writeVOTable } from '../adapters/ivoa/votable/index.js';
import type { Row, WritableTable } from '../adapters/ivoa/votable/index.js';
import { seededRandom as random } from '../test/support/random.js';

/** Options of `benchVotable`. */
export interface BenchVotableOptions {
  /** Rows in the generated table (default 1,000,000). */
  rows?: number;
  /** Python with astropy (default /usr/bin/python3); astropy timing is skipped when it cannot import astropy. */
  python?: string;
  /** Set false to skip astropy. */
  astropy?: boolean;
  /** Keep the generated files (their directory is in the result). */
  keep?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Numbers for one serialisation. */
export interface SerializationResult {
  serialization: 'BINARY2' | 'TABLEDATA';
  fileBytes: number;
  rows: number;
  writeSeconds: number;
  oursSeconds: number;
  oursRowsPerSec: number;
  astropySeconds: number | null;
  astropyRowsPerSec: number | null;
  /** ours / astropy rows per second; null when astropy was not run. */
  ratio: number | null;
}

/** What `benchVotable` returns. */
export interface BenchVotableResult {
  rows: number;
  node: string;
  astropyVersion: string | null;
  /** Why astropy was not timed, when it was not. */
  astropySkipped: string | null;
  dir: string;
  results: SerializationResult[];
}

/** The Gaia-like table the benchmark writes and reads. */
export const GAIA_LIKE: WritableTable = {
  name: 'gaia_like',
  fields: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'parallax', datatype: 'double', unit: 'mas' },
    { name: 'pmra', datatype: 'double', unit: 'mas/yr' },
    { name: 'pmdec', datatype: 'double', unit: 'mas/yr' },
    { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag' },
    { name: 'designation', datatype: 'char', arraysize: '*' },
  ],
};

/** Deterministic rows, about a fifth of them without parallax/pmra/pmdec (null). */
export function* gaiaLikeRows(n: number, seed = 42): Generator<Row> {
  const rand = random(seed);
  for (let i = 0; i < n; i++) {
    const sourceId = (BigInt(Math.floor(rand() * 2 ** 30)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
    const hasAstrometry = rand() > 0.2;
    yield [
      sourceId,
      rand() * 360,
      rand() * 180 - 90,
      hasAstrometry ? rand() * 10 - 1 : null,
      hasAstrometry ? rand() * 40 - 20 : null,
      hasAstrometry ? rand() * 40 - 20 : null,
      Math.fround(3 + rand() * 18),
      `Gaia DR3 ${sourceId}`,
    ];
  }
}

const ASTROPY_SCRIPT = `
import json, sys, time, warnings
warnings.simplefilter("ignore")
import astropy
from astropy.io.votable import parse
t0 = time.perf_counter()
table = parse(sys.argv[1]).get_first_table()
n = len(table.array)
print(json.dumps({"rows": n, "seconds": time.perf_counter() - t0, "version": astropy.__version__}))
`;

/** Runs the benchmark; see the file comment. */
export async function benchVotable(opts: BenchVotableOptions = {}): Promise<BenchVotableResult> {
  const nRows = opts.rows ?? 1_000_000;
  const python = opts.python ?? '/usr/bin/python3';
  const log = opts.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'votable-bench-'));
  let astropySkipped: string | null = opts.astropy === false ? 'disabled' : null;
  let astropyVersion: string | null = null;
  if (astropySkipped === null) {
    try {
      astropyVersion = (await run(python, ['-c', 'import astropy; print(astropy.__version__)'])).trim();
    } catch (err) {
      astropySkipped = `${python} cannot import astropy: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  const results: SerializationResult[] = [];
  try {
    for (const serialization of ['BINARY2', 'TABLEDATA'] as const) {
      const file = join(dir, `gaia-like-${serialization.toLowerCase()}.vot`);
      let t0 = performance.now();
      await pipeline(Readable.from(writeVOTable(GAIA_LIKE, gaiaLikeRows(nRows), { serialization })), createWriteStream(file));
      const writeSeconds = (performance.now() - t0) / 1000;
      const fileBytes = (await stat(file)).size;
      log(`${serialization}: wrote ${nRows} rows, ${(fileBytes / 1e6).toFixed(1)} MB in ${writeSeconds.toFixed(2)} s`);

      t0 = performance.now();
      let rows = 0;
      for await (const ev of readVOTable(createReadStream(file))) if (ev.type === 'rows') rows += ev.rows.length;
      const oursSeconds = (performance.now() - t0) / 1000;
      if (rows !== nRows) throw new Error(`read ${rows} rows from ${file}, wrote ${nRows}`);
      const oursRowsPerSec = rows / oursSeconds;
      log(`${serialization}: ours    ${fmt(oursRowsPerSec)} rows/s (${oursSeconds.toFixed(2)} s)`);

      let astropySeconds: number | null = null;
      if (astropySkipped === null) {
        const out = JSON.parse(await run(python, ['-c', ASTROPY_SCRIPT, file])) as { rows: number; seconds: number };
        if (out.rows !== nRows) throw new Error(`astropy read ${out.rows} rows from ${file}, wrote ${nRows}`);
        astropySeconds = out.seconds;
        log(`${serialization}: astropy ${fmt(nRows / astropySeconds)} rows/s (${astropySeconds.toFixed(2)} s)`);
      }
      const astropyRowsPerSec = astropySeconds === null ? null : nRows / astropySeconds;
      results.push({
        serialization,
        fileBytes,
        rows,
        writeSeconds,
        oursSeconds,
        oursRowsPerSec,
        astropySeconds,
        astropyRowsPerSec,
        ratio: astropyRowsPerSec === null ? null : oursRowsPerSec / astropyRowsPerSec,
      });
    }
  } finally {
    if (opts.keep !== true) await rm(dir, { recursive: true, force: true });
  }
  return { rows: nRows, node: process.version, astropyVersion, astropySkipped, dir, results };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}${stderr ? `\n${stderr}` : ''}`));
      else resolve(stdout);
    });
  });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Prints a result as the summary table the runner shows. */
export function printVotable(result: BenchVotableResult): void {
  console.log(`VOTable read, ${result.rows.toLocaleString('en-US')} rows, node ${result.node}, astropy ${result.astropyVersion ?? `skipped (${result.astropySkipped})`}`);
  for (const r of result.results) {
    const ratio = r.ratio === null ? 'n/a' : `${r.ratio.toFixed(2)}x`;
    const astro = r.astropyRowsPerSec === null ? 'n/a' : fmt(r.astropyRowsPerSec);
    console.log(`${r.serialization.padEnd(9)} ours ${fmt(r.oursRowsPerSec).padStart(11)} rows/s   astropy ${astro.padStart(11)} rows/s   ours/astropy ${ratio}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const rowsAt = args.indexOf('--rows');
  const result = await benchVotable({
    rows: rowsAt >= 0 ? Number(args[rowsAt + 1]) : undefined,
    astropy: !args.includes('--no-astropy'),
    keep: args.includes('--keep'),
    log: (line) => console.log(line),
  });
  console.log('');
  printVotable(result);
  if (args.includes('--keep')) console.log(`files kept in ${result.dir}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
