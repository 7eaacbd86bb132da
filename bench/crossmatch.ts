/**
 * The matcher (broker/crossmatch) against STILTS tmatch2 and astropy on the same files, in the
 * same run (issue 11): 1,000,000 × 1,000,000 rows at 1″, BEST and ALL.
 *
 *   npx tsx bench/crossmatch.ts [--rows 1000000] [--radius 1] [--keep]
 *
 * Generates a Gaia-like and a Pan-STARRS-like catalogue as FITS binary tables (seeded; a
 * 10°×10° patch across RA 0/360; 70% of the right rows are left rows moved by σ = 0.1″ per axis,
 * the rest unrelated), then runs each tool as its own process under /usr/bin/time -v, so wall
 * time and peak RSS include start-up, reading the FITS files, matching and writing a CSV:
 *   ours    `node --import tsx bench/crossmatch.ts --child …` (reads FITS, crossmatch(), writes CSV)
 *   STILTS  `stilts tmatch2 matcher=sky params=R find=best1|all join=1and2`
 *   astropy BEST: ../shared/peers/xmatch_astropy.py (`match_to_catalog_sky`, nearest ≤ R);
 *           ALL: `search_around_sky` (astropy's all-pairs form)
 * BEST is "the nearest right row for each left row" (STILTS `find=best1`). The pair sets are
 * compared as (source_id, objID). A tool that is not installed is reported and skipped.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crossmatch } from '../broker/crossmatch/index.js';
import { seededRandom } from '../test/support/random.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PEERS = resolve(HERE, '../../shared/peers');
const PYTHON = '/usr/bin/python3';

/** Options of `benchCrossmatch`. */
export interface BenchCrossmatchOptions {
  rows?: number;
  radiusArcsec?: number;
  keep?: boolean;
  log?: (line: string) => void;
}

/** One tool's run. */
export interface ToolRun {
  tool: string;
  mode: 'BEST' | 'ALL';
  wallS: number;
  peakRssMb: number;
  pairs: number;
  /** Pairs this tool has that ours lacks, and ours has that it lacks (null for ours). */
  extra: number | null;
  missing: number | null;
  note: string;
}

/** The bench's result. */
export interface BenchCrossmatchResult {
  rows: number;
  radiusArcsec: number;
  runs: ToolRun[];
  skipped: string[];
  dir: string;
}

// ---------- data: a seeded catalogue pair as FITS binary tables ----------

function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Rows uniform on the sphere in RA 355°…5°, Dec −5°…+5°. */
function patch(rnd: () => number): [number, number] {
  const s0 = Math.sin(-5 * Math.PI / 180);
  const dec = Math.asin(s0 + rnd() * (-2 * s0)) * 180 / Math.PI;
  return [(355 + rnd() * 10) % 360, dec];
}

function card(key: string, value: string): string {
  return (key.padEnd(8) + '= ' + value.padStart(20)).padEnd(80);
}

function str(v: string): string {
  return `'${v.padEnd(8)}'`.padEnd(20);
}

/** A FITS file with an empty primary HDU and one BINTABLE of (id K, ra D, dec D). */
function fitsTable(names: [string, string, string], id: BigInt64Array, ra: Float64Array, dec: Float64Array): Buffer {
  const n = id.length;
  const block = (cards: string[]): string => { const s = [...cards, 'END'.padEnd(80)].join(''); return s.padEnd(Math.ceil(s.length / 2880) * 2880); };
  const primary = block([card('SIMPLE', 'T'), card('BITPIX', '8'), card('NAXIS', '0'), card('EXTEND', 'T')]);
  const ext = block([
    card('XTENSION', "'BINTABLE'"), card('BITPIX', '8'), card('NAXIS', '2'), card('NAXIS1', '24'), card('NAXIS2', String(n)),
    card('PCOUNT', '0'), card('GCOUNT', '1'), card('TFIELDS', '3'),
    card('TTYPE1', str(names[0])), card('TFORM1', "'K       '"),
    card('TTYPE2', str(names[1])), card('TFORM2', "'D       '"), card('TUNIT2', "'deg     '"),
    card('TTYPE3', str(names[2])), card('TFORM3', "'D       '"), card('TUNIT3', "'deg     '"),
  ]);
  const dataLen = Math.ceil((n * 24) / 2880) * 2880;
  const buf = Buffer.alloc(primary.length + ext.length + dataLen);
  buf.write(primary, 0, 'latin1');
  buf.write(ext, primary.length, 'latin1');
  let o = primary.length + ext.length;
  for (let i = 0; i < n; i++, o += 24) {
    buf.writeBigInt64BE(id[i], o);
    buf.writeDoubleBE(ra[i], o + 8);
    buf.writeDoubleBE(dec[i], o + 16);
  }
  return buf;
}

/** Reads the (K, D, D) BINTABLE this bench writes: ids and positions as typed arrays. */
function readFitsTable(buf: Buffer): { id: BigInt64Array; ra: Float64Array; dec: Float64Array } {
  let o = 2880; // the primary HDU is one header block, no data
  const cards = new Map<string, string>();
  for (;; o += 80) {
    const c = buf.toString('latin1', o, o + 80);
    if (c.startsWith('END ')) break;
    cards.set(c.slice(0, 8).trim(), c.slice(10).trim());
  }
  o = Math.ceil((o + 80) / 2880) * 2880;
  const width = Number(cards.get('NAXIS1'));
  const n = Number(cards.get('NAXIS2'));
  if (width !== 24 || cards.get('TFORM1') !== "'K       '") throw new Error('unexpected FITS layout');
  // Big-endian rows: swap every 8-byte word once (native), then read the columns with a stride.
  const data = new Uint8Array(n * 24);
  data.set(buf.subarray(o, o + n * 24));
  Buffer.from(data.buffer).swap64();
  const f = new Float64Array(data.buffer);
  const k = new BigInt64Array(data.buffer);
  const id = new BigInt64Array(n);
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0, w = 0; i < n; i++, w += 3) {
    id[i] = k[w];
    ra[i] = f[w + 1];
    dec[i] = f[w + 2];
  }
  return { id, ra, dec };
}

async function generate(dir: string, rows: number): Promise<void> {
  const rnd = seededRandom(20240611);
  const gid = new BigInt64Array(rows), gra = new Float64Array(rows), gdec = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    [gra[i], gdec[i]] = patch(rnd);
    gid[i] = 3_000_000_000_000_000_000n + BigInt(i) * 997n;
  }
  const pid = new BigInt64Array(rows), pra = new Float64Array(rows), pdec = new Float64Array(rows);
  const sigma = 0.1 / 3600;
  for (let i = 0; i < rows; i++) {
    if (i < rows * 0.7) {
      const g = i; // left rows are in random order already: the first 70% get a counterpart each
      pdec[i] = gdec[g] + gaussian(rnd) * sigma;
      pra[i] = (gra[g] + (gaussian(rnd) * sigma) / Math.cos(gdec[g] * Math.PI / 180) + 360) % 360;
    } else {
      [pra[i], pdec[i]] = patch(rnd);
    }
    pid[i] = 100_000_000_000_000_000n + BigInt(i);
  }
  await writeFile(join(dir, 'gaia_source.fits'), fitsTable(['source_id', 'ra', 'dec'], gid, gra, gdec));
  await writeFile(join(dir, 'ps1_mean_object.fits'), fitsTable(['objID', 'raMean', 'decMean'], pid, pra, pdec));
}

// ---------- the child: our matcher as a process, like the others ----------

/** CSV lines of a batch of pairs, named by their ids. */
function csvLines(left: Uint32Array, right: Uint32Array, sep: Float64Array, lid: BigInt64Array, rid: BigInt64Array): string {
  const lines = new Array<string>(left.length);
  for (let k = 0; k < left.length; k++) lines[k] = lid[left[k]].toString() + ',' + rid[right[k]].toString() + ',' + sep[k].toFixed(6);
  return lines.join('\n') + '\n';
}

async function child(dir: string, out: string, mode: 'BEST' | 'ALL', radius: number): Promise<void> {
  const t0 = performance.now();
  const g = readFitsTable(await readFile(join(dir, 'gaia_source.fits')));
  const p = readFitsTable(await readFile(join(dir, 'ps1_mean_object.fits')));
  const t1 = performance.now();
  const chunks: string[] = ['source_id,objID,sep_arcsec\n'];
  let n = 0;
  let matchMs = 0;
  let formatMs = 0;
  let m0 = performance.now();
  for await (const b of crossmatch([{ ra: g.ra, dec: g.dec, id: g.id }], [{ ra: p.ra, dec: p.dec, id: p.id }], { radiusArcsec: radius, mode })) {
    matchMs += performance.now() - m0;
    const f0 = performance.now();
    chunks.push(csvLines(b.left, b.right, b.sepArcsec, g.id, p.id));
    n += b.left.length;
    m0 = performance.now();
    formatMs += m0 - f0;
  }
  matchMs += performance.now() - m0;
  const t2 = performance.now();
  await writeFile(out, chunks.join(''));
  console.log(`ours[${mode}] pairs=${n} read=${((t1 - t0) / 1000).toFixed(2)}s match=${(matchMs / 1000).toFixed(2)}s format+write=${((formatMs + performance.now() - t2) / 1000).toFixed(2)}s start-up=${(t0 / 1000).toFixed(2)}s`);
}

// ---------- the parent ----------

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? fail(new Error(`${cmd} failed: ${stderr || err.message}`)) : ok(stdout + stderr)));
  });
}

/** Runs `cmd` under /usr/bin/time -v: wall seconds, peak RSS MiB and the command's own output. */
async function timed(cmd: string, args: string[]): Promise<{ wallS: number; peakRssMb: number; output: string }> {
  const out = await run('/usr/bin/time', ['-v', cmd, ...args]);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(out)?.[1] ?? '';
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(out)?.[1]);
  const wallS = wall.split(':').reduce((s, x) => s * 60 + Number(x), 0);
  const output = out.split('\n').filter((l) => !l.startsWith('\t')).join('\n').trim();
  return { wallS, peakRssMb: rss / 1024, output };
}

/** The (source_id, objID) pairs of a CSV whose first two columns are those. */
async function pairSet(file: string): Promise<Set<string>> {
  const text = await readFile(file, 'latin1');
  const set = new Set<string>();
  let start = text.indexOf('\n') + 1;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const c1 = text.indexOf(',', start);
    const c2 = text.indexOf(',', c1 + 1);
    if (c1 > 0 && c1 < end) set.add(text.slice(start, c2 > 0 && c2 < end ? c2 : end).replace(/"/g, ''));
    start = end + 1;
  }
  return set;
}

function available(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? null : `${cmd} ${args.join(' ')}: ${r.error?.message ?? (r.stderr || '').split('\n').filter(Boolean).at(-1) ?? `exit ${r.status}`}`;
}

const ASTROPY_ALL = `
import sys, numpy as np, astropy.units as u
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table
d, out, r = sys.argv[1], sys.argv[2], float(sys.argv[3])
g = Table.read(f"{d}/gaia_source.fits"); p = Table.read(f"{d}/ps1_mean_object.fits")
cg = SkyCoord(ra=np.asarray(g["ra"]) * u.deg, dec=np.asarray(g["dec"]) * u.deg)
cp = SkyCoord(ra=np.asarray(p["raMean"]) * u.deg, dec=np.asarray(p["decMean"]) * u.deg)
i, j, sep, _ = search_around_sky(cg, cp, r * u.arcsec)
t = Table(); t["source_id"] = np.asarray(g["source_id"])[i]; t["objID"] = np.asarray(p["objID"])[j]; t["sep_arcsec"] = sep.arcsec
t.write(out, format="ascii.csv", overwrite=True)
print(f"astropy search_around_sky pairs={len(i)}")
`;

/** Runs every tool on the same generated files and compares their pairs with ours. */
export async function benchCrossmatch(opts: BenchCrossmatchOptions = {}): Promise<BenchCrossmatchResult> {
  const rows = opts.rows ?? 1_000_000;
  const radius = opts.radiusArcsec ?? 1;
  const log = opts.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'bench-crossmatch-'));
  const skipped: string[] = [];
  const runs: ToolRun[] = [];
  try {
    const noTime = existsSync('/usr/bin/time') ? null : '/usr/bin/time is not installed';
    if (noTime) throw new Error(noTime);
    await generate(dir, rows);
    log(`generated ${rows} × ${rows} rows in ${dir}`);
    const stilts = available('stilts', ['-version']);
    const astropy = available(PYTHON, ['-c', 'import astropy.coordinates']);
    if (stilts) skipped.push(`STILTS: ${stilts}`);
    if (astropy) skipped.push(`astropy: ${astropy}`);
    const astropyBest = join(PEERS, 'xmatch_astropy.py');
    if (!astropy && !existsSync(astropyBest)) skipped.push(`astropy BEST: ${astropyBest} is missing`);
    await writeFile(join(dir, 'astropy_all.py'), ASTROPY_ALL);
    const self = fileURLToPath(import.meta.url);
    for (const mode of ['BEST', 'ALL'] as const) {
      const tools: Array<{ tool: string; out: string; cmd: string; args: string[] } | null> = [
        { tool: 'ours (broker/crossmatch)', out: join(dir, `ours_${mode}.csv`), cmd: process.execPath, args: ['--import', 'tsx', self, '--child', dir, join(dir, `ours_${mode}.csv`), mode, String(radius)] },
        stilts ? null : {
          tool: `STILTS tmatch2 find=${mode === 'BEST' ? 'best1' : 'all'}`, out: join(dir, `stilts_${mode}.csv`), cmd: 'stilts',
          args: ['tmatch2', `in1=${join(dir, 'gaia_source.fits')}`, `in2=${join(dir, 'ps1_mean_object.fits')}`, 'matcher=sky', 'values1=ra dec', 'values2=raMean decMean',
            `params=${radius}`, `find=${mode === 'BEST' ? 'best1' : 'all'}`, 'join=1and2', 'ocmd=keepcols "source_id objID Separation"', `out=${join(dir, `stilts_${mode}.csv`)}`, 'ofmt=csv'],
        },
        astropy ? null : mode === 'BEST'
          ? { tool: 'astropy match_to_catalog_sky', out: join(dir, 'astropy_BEST.csv'), cmd: PYTHON, args: [astropyBest, 'fits', dir, join(dir, 'astropy_BEST.csv'), String(radius)] }
          : { tool: 'astropy search_around_sky', out: join(dir, 'astropy_ALL.csv'), cmd: PYTHON, args: [join(dir, 'astropy_all.py'), dir, join(dir, 'astropy_ALL.csv'), String(radius)] },
      ];
      let ours: Set<string> | null = null;
      for (const t of tools) {
        if (!t) continue;
        const r = await timed(t.cmd, t.args);
        const set = await pairSet(t.out);
        let extra: number | null = null;
        let missing: number | null = null;
        if (ours === null) ours = set;
        else {
          extra = 0;
          for (const k of set) if (!ours.has(k)) extra++;
          missing = 0;
          for (const k of ours) if (!set.has(k)) missing++;
        }
        runs.push({ tool: t.tool, mode, wallS: r.wallS, peakRssMb: r.peakRssMb, pairs: set.size, extra, missing, note: r.output.split('\n').filter((l) => /pairs=|matches=/.test(l)).join(' ') });
        log(`${mode} ${t.tool}: ${r.wallS.toFixed(2)} s, ${r.peakRssMb.toFixed(0)} MiB, ${set.size} pairs`);
      }
    }
    return { rows, radiusArcsec: radius, runs, skipped, dir };
  } finally {
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** Prints the result as a table with ratios against ours. */
export function printCrossmatch(r: BenchCrossmatchResult): void {
  console.log(`Crossmatch ${r.rows.toLocaleString('en')} × ${r.rows.toLocaleString('en')} rows at ${r.radiusArcsec}″ (each tool a process: start-up, FITS read, match, CSV write)`);
  for (const s of r.skipped) console.log(`  skipped: ${s}`);
  for (const mode of ['BEST', 'ALL'] as const) {
    const rs = r.runs.filter((x) => x.mode === mode);
    const ours = rs[0];
    if (!ours) continue;
    for (const x of rs) {
      const rate = (2 * r.rows) / x.wallS;
      const vs = x === ours ? '(baseline of the ratios)' : `ours ${(x.wallS / ours.wallS).toFixed(2)}× faster; pairs: ${x.extra === 0 && x.missing === 0 ? 'identical' : `${x.extra} not in ours, ${x.missing} of ours missing`}`;
      console.log(`  ${mode.padEnd(4)} ${x.tool.padEnd(36)} ${x.wallS.toFixed(2).padStart(6)} s ${(rate / 1e6).toFixed(2).padStart(5)} M rows/s ${x.peakRssMb.toFixed(0).padStart(5)} MiB ${String(x.pairs).padStart(8)} pairs  ${vs}`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i >= 0 ? process.argv[i + 1] : undefined; };
  if (process.argv.includes('--child')) {
    const i = process.argv.indexOf('--child');
    const [dir, out, mode, radius] = process.argv.slice(i + 1, i + 5);
    await child(dir, out, mode === 'BEST' ? 'BEST' : 'ALL', Number(radius));
    console.log(`exit at ${(performance.now() / 1000).toFixed(2)}s`);
  } else {
    const result = await benchCrossmatch({
      rows: Number(arg('--rows') ?? 1_000_000),
      radiusArcsec: Number(arg('--radius') ?? 1),
      keep: process.argv.includes('--keep'),
      log: (l) => console.error(l),
    });
    printCrossmatch(result);
    if (process.argv.includes('--keep')) console.log(`  files kept in ${result.dir}`);
  }
}
