/**
 * The hot loop: left rows of one zone against the right rows of the zones z-1, z, z+1. Left rows
 * are in RA order, so each right zone keeps a pointer that only moves forward (a merge sweep);
 * candidates in the RA window pass a declination pre-filter, then the exact haversine test.
 */
import type { PairBuffer } from './pairs.js';
import type { RowSet } from './rows.js';
import { havToArcsec, type RadiusGeometry } from './sphere.js';
import type { MatchMode } from './types.js';
import { zoneRaHalfWidth, type ZoneTable } from './zones.js';

/** Everything the sweep of one partition needs. */
export interface SweepInput {
  left: ZoneTable;
  right: ZoneTable;
  rightRows: RowSet;
  g: RadiusGeometry;
  h: number;
  mode: MatchMode;
}

const rs = new Int32Array(3);
const re = new Int32Array(3);
const lo = new Int32Array(3);

/** Matches the left rows of zone index `k` of `s.left`, appending pairs to `out`. */
export function sweepZone(s: SweepInput, k: number, out: PairBuffer): void {
  const L = s.left;
  const R = s.right;
  const ls = L.start[k];
  const le = L.start[k + 1];
  if (ls === le) return;
  const z = L.zmin + k;
  const w = zoneRaHalfWidth(s.g, z, s.h);
  const full = !Number.isFinite(w);
  let m = 0;
  for (let d = -1; d <= 1; d++) {
    const q = z + d - R.zmin;
    if (q < 0 || q >= R.nz) continue;
    const a = full ? R.coreStart[q] : R.start[q];
    const b = full ? R.coreEnd[q] : R.start[q + 1];
    if (a === b) continue;
    rs[m] = a; re[m] = b; lo[m] = a; m++;
  }
  if (m === 0) return;
  const best = s.mode === 'BEST';
  const havR = s.g.havRadius;
  const mr = s.g.marginRad;
  const rKey = R.key, rRa = R.ra, rDec = R.dec, rCos = R.cos;
  const lKey = L.key, lRa = L.ra, lDec = L.dec, lCos = L.cos;
  for (let i = ls; i < le; i++) {
    const kmin = lKey[i] - w;
    const kmax = lKey[i] + w;
    const ra1 = lRa[i], dec1 = lDec[i], cos1 = lCos[i];
    let bestHav = Infinity;
    let bestJ = -1;
    for (let t = 0; t < m; t++) {
      let j = rs[t];
      const end = re[t];
      if (!full) {
        j = lo[t];
        while (j < end && rKey[j] < kmin) j++;
        lo[t] = j;
      }
      for (; j < end; j++) {
        if (!full && rKey[j] > kmax) break;
        const dd = rDec[j] - dec1;
        if (dd > mr || dd < -mr) continue;
        const sd = Math.sin(dd / 2);
        const sa = Math.sin((rRa[j] - ra1) / 2);
        const hav = sd * sd + cos1 * rCos[j] * sa * sa;
        if (hav > havR) continue;
        if (!best) {
          out.push(L.ord[i], R.ord[j], havToArcsec(hav));
        } else if (hav < bestHav || (hav === bestHav && s.rightRows.compareIds(R.row[j], R.row[bestJ]) < 0)) {
          bestHav = hav;
          bestJ = j;
        }
      }
    }
    if (bestJ >= 0) out.push(L.ord[i], R.ord[bestJ], havToArcsec(bestHav));
  }
}
