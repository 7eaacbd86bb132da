/**
 * Spilling to disk when the inputs exceed the memory budget. Rows go to files by declination
 * band (0.05°, 3,600 bands; a band is taller than twice the largest radius). Each band has four
 * files: its left rows (L), its right rows (R), and margin copies of right rows of the band above
 * within the radius of its top edge (MA) and of the band below within the radius of its bottom
 * edge (MB). A run of bands b..c is matched with its L and R files plus MB of b and MA of c: every
 * right row within the radius of a left row of the run, and each exactly once.
 */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConstellationError } from '../../registry/model/errors.js';
import { RowSet, type IdKind } from './rows.js';
import type { RadiusGeometry } from './sphere.js';

/** Band height in degrees and band count. */
export const BAND_DEG = 0.05;
const BANDS = Math.round(180 / BAND_DEG);
/** File kinds of a band. */
const L = 0, R = 1, MA = 2, MB = 3;
const KIND_NAMES = ['L', 'R', 'MA', 'MB'];
/** A record: ra, dec, ordinal (as doubles) and the id's 8 bytes. */
const RECORD_DOUBLES = 4;
const RECORD_BYTES = RECORD_DOUBLES * 8;

/** A buffer of records for one file. */
class RecordBuffer {
  n = 0;
  f: Float64Array;
  b: BigInt64Array;
  constructor(capacity: number) {
    const ab = new ArrayBuffer(capacity * RECORD_BYTES);
    this.f = new Float64Array(ab);
    this.b = new BigInt64Array(ab);
  }
}

/** A run of bands matched together. */
export interface BandRun {
  first: number;
  last: number;
  rows: number;
}

/** The spill directory of one match and the row counts of its files. */
export class Spill {
  private readonly counts = new Float64Array(BANDS * 4);
  private readonly buffers = new Map<number, RecordBuffer>();
  private buffered = 0;

  private constructor(
    readonly dir: string,
    private readonly g: RadiusGeometry,
    private readonly kinds: { left: IdKind; right: IdKind },
    private readonly flushRows: number,
  ) {}

  /** Creates a fresh directory under `parent`; `budgetBytes` bounds the write buffers (a quarter of it). */
  static async open(parent: string, g: RadiusGeometry, kinds: { left: IdKind; right: IdKind }, budgetBytes: number): Promise<Spill> {
    let dir: string;
    try {
      dir = await mkdtemp(join(parent, 'crossmatch-'));
    } catch (cause) {
      throw new ConstellationError('DATA_DIR', `cannot create a spill directory under ${parent}`, { cause });
    }
    return new Spill(dir, g, kinds, Math.max(4096, Math.floor(budgetBytes / 4 / RECORD_BYTES)));
  }

  /** Adds one row of a side; true when the buffers should be flushed (`flush()`). */
  add(side: 'left' | 'right', ra: number, dec: number, ordinal: number, idBig: bigint, idNum: number): boolean {
    const b = bandOf(dec);
    if (side === 'left') {
      this.put(b * 4 + L, ra, dec, ordinal, idBig, idNum, this.kinds.left);
    } else {
      this.put(b * 4 + R, ra, dec, ordinal, idBig, idNum, this.kinds.right);
      const lo = -90 + b * BAND_DEG;
      if (b > 0 && dec - lo <= this.g.marginDeg) this.put((b - 1) * 4 + MA, ra, dec, ordinal, idBig, idNum, this.kinds.right);
      if (b < BANDS - 1 && lo + BAND_DEG - dec <= this.g.marginDeg) this.put((b + 1) * 4 + MB, ra, dec, ordinal, idBig, idNum, this.kinds.right);
    }
    return this.buffered >= this.flushRows;
  }

  /** Adds every row of a RowSet (rows held in memory before the budget was passed). */
  addAll(side: 'left' | 'right', rows: RowSet): void {
    for (let i = 0; i < rows.length; i++) {
      this.add(side, rows.ra[i], rows.dec[i], rows.ordinal[i], rows.idBig ? rows.idBig[i] : 0n, rows.idNum ? rows.idNum[i] : 0);
    }
  }

  /** Appends every buffered record to its file. */
  async flush(): Promise<void> {
    for (const [key, buf] of this.buffers) {
      if (buf.n === 0) continue;
      await appendFile(this.path(key), new Uint8Array(buf.f.buffer, 0, buf.n * RECORD_BYTES));
      buf.n = 0;
    }
    this.buffers.clear();
    this.buffered = 0;
  }

  /** Runs of consecutive bands with left rows, each holding at most `budgetRows` rows unless one band alone is larger. */
  runs(budgetRows: number): BandRun[] {
    const c = this.counts;
    const out: BandRun[] = [];
    let b = 0;
    while (b < BANDS) {
      if (c[b * 4 + L] === 0) { b++; continue; }
      const first = b;
      let rows = c[b * 4 + MB] + c[b * 4 + L] + c[b * 4 + R] + c[b * 4 + MA];
      while (b + 1 < BANDS) {
        const n = b + 1;
        const next = rows - c[b * 4 + MA] + c[n * 4 + L] + c[n * 4 + R] + c[n * 4 + MA];
        if (next > budgetRows) break;
        rows = next;
        b = n;
      }
      out.push({ first, last: b, rows });
      b++;
    }
    return out;
  }

  /** Reads the rows of a run: its left rows, and its right rows with the two outer margins. */
  async load(run: BandRun): Promise<{ left: RowSet; right: RowSet }> {
    const left = new RowSet(this.kinds.left, 1024);
    const right = new RowSet(this.kinds.right, 1024);
    const keys: Array<[number, RowSet]> = [[run.first * 4 + MB, right], [run.last * 4 + MA, right]];
    for (let b = run.first; b <= run.last; b++) keys.push([b * 4 + L, left], [b * 4 + R, right]);
    for (const [key, rows] of keys) {
      const n = this.counts[key];
      if (n === 0) continue;
      const bytes = await readFile(this.path(key));
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const f = new Float64Array(ab);
      const big = new BigInt64Array(ab);
      rows.reserve(n);
      for (let r = 0; r < n; r++) {
        const o = r * RECORD_DOUBLES;
        rows.push(f[o], f[o + 1], f[o + 2], big[o + 3], f[o + 3]);
      }
    }
    return { left, right };
  }

  /** Removes the directory and everything in it. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private put(key: number, ra: number, dec: number, ordinal: number, idBig: bigint, idNum: number, kind: IdKind): void {
    let buf = this.buffers.get(key);
    if (!buf) {
      buf = new RecordBuffer(256);
      this.buffers.set(key, buf);
    }
    if (buf.n * RECORD_DOUBLES === buf.f.length) {
      const bigger = new RecordBuffer(buf.n * 2);
      bigger.f.set(buf.f);
      bigger.n = buf.n;
      buf = bigger;
      this.buffers.set(key, buf);
    }
    const o = buf.n * RECORD_DOUBLES;
    buf.f[o] = ra;
    buf.f[o + 1] = dec;
    buf.f[o + 2] = ordinal;
    if (kind === 'bigint') buf.b[o + 3] = idBig;
    else buf.f[o + 3] = idNum;
    buf.n++;
    this.counts[key]++;
    this.buffered++;
  }

  private path(key: number): string {
    return join(this.dir, `${key >> 2}.${KIND_NAMES[key & 3]}`);
  }
}

/** The band of a declination. */
function bandOf(dec: number): number {
  const b = Math.floor((dec + 90) / BAND_DEG);
  return b < 0 ? 0 : b >= BANDS ? BANDS - 1 : b;
}
