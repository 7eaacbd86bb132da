/** Shared helpers of the crossmatch tests: catalogues, a brute-force matcher, pair collection. */
import { crossmatch, type CrossmatchOptions, type SkyBatch } from '../../broker/crossmatch/index.js';
import { haversine, havToArcsec, normalizeRa, radiusGeometry, DEG } from '../../broker/crossmatch/sphere.js';

/** One side as plain arrays (positions in degrees, optional bigint ids). */
export interface Cat {
  ra: number[];
  dec: number[];
  id?: bigint[];
}

/** A pair as a comparable string, plus its separation. */
export interface Pair {
  left: number;
  right: number;
  sep: number;
}

/** Splits a catalogue into batches of `size` rows. */
export function batches(c: Cat, size = 997): SkyBatch[] {
  const out: SkyBatch[] = [];
  for (let s = 0; s < Math.max(c.ra.length, 1); s += size) {
    const e = Math.min(c.ra.length, s + size);
    const b: SkyBatch = { ra: Float64Array.from(c.ra.slice(s, e)), dec: Float64Array.from(c.dec.slice(s, e)) };
    if (c.id) b.id = BigInt64Array.from(c.id.slice(s, e));
    out.push(b);
  }
  return out;
}

/** Runs the matcher and collects every pair, sorted by (left, right). */
export async function runMatch(left: Cat, right: Cat, options: CrossmatchOptions, batchSize = 997): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for await (const b of crossmatch(batches(left, batchSize), batches(right, batchSize), options)) {
    for (let k = 0; k < b.left.length; k++) pairs.push({ left: b.left[k], right: b.right[k], sep: b.sepArcsec[k] });
  }
  return pairs.sort((a, b) => a.left - b.left || a.right - b.right);
}

/** Every pair by brute force (ALL), or the nearest per left row with ties to the smaller id (BEST). */
export function bruteForce(left: Cat, right: Cat, radiusArcsec: number, mode: 'ALL' | 'BEST'): Pair[] {
  const havR = radiusGeometry(radiusArcsec).havRadius;
  const out: Pair[] = [];
  const rr = right.ra.map((a) => normalizeRa(a) * DEG);
  const rd = right.dec.map((d) => d * DEG);
  const rc = rd.map((d) => Math.cos(d));
  for (let i = 0; i < left.ra.length; i++) {
    if (!Number.isFinite(left.ra[i]) || !Number.isFinite(left.dec[i])) continue;
    const a = normalizeRa(left.ra[i]) * DEG;
    const d = left.dec[i] * DEG;
    const c = Math.cos(d);
    let best = -1;
    let bestHav = Infinity;
    for (let j = 0; j < rr.length; j++) {
      if (!Number.isFinite(rr[j]) || !Number.isFinite(rd[j])) continue;
      const hav = haversine(a, d, c, rr[j], rd[j], rc[j]);
      if (hav > havR) continue;
      if (mode === 'ALL') out.push({ left: i, right: j, sep: havToArcsec(hav) });
      else if (hav < bestHav || (hav === bestHav && idOf(right, j) < idOf(right, best))) {
        best = j;
        bestHav = hav;
      }
    }
    if (best >= 0) out.push({ left: i, right: best, sep: havToArcsec(bestHav) });
  }
  return out;
}

function idOf(c: Cat, j: number): bigint {
  return c.id ? c.id[j] : BigInt(j);
}

/** The pairs as "left-right" keys, for set comparisons with readable diffs. */
export function keys(pairs: Pair[]): string[] {
  return pairs.map((p) => `${p.left}-${p.right}`).sort();
}

/** A point `sepArcsec` from (ra, dec) at position angle `pa` (radians), exact spherical offset. */
export function offset(ra: number, dec: number, sepArcsec: number, pa: number): [number, number] {
  const d1 = dec * DEG;
  const s = sepArcsec / 3600 * DEG;
  const d2 = Math.asin(Math.sin(d1) * Math.cos(s) + Math.cos(d1) * Math.sin(s) * Math.cos(pa));
  const dra = Math.atan2(Math.sin(pa) * Math.sin(s) * Math.cos(d1), Math.cos(s) - Math.sin(d1) * Math.sin(d2));
  return [normalizeRa(ra + dra / DEG), Math.max(-90, Math.min(90, d2 / DEG))];
}
