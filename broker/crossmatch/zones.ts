/**
 * Declination zones (Gray, Nieto-Santisteban & Szalay 2007, "The Zones Algorithm"): zone
 * z = floor((dec + 90°) / h) with h ≥ the radius, so a pair's rows are at most one zone apart
 * (|Δdec| ≤ separation). Each zone's rows are sorted by RA; the right side also carries copies of
 * rows near RA 0/360 shifted by ±360°, so an RA window that crosses 0/360 is one contiguous run.
 */
import { sortWithPayload } from './sort.js';
import { DEG, raHalfWidthDeg, type RadiusGeometry } from './sphere.js';
import type { RowSet } from './rows.js';

/** Zone height in degrees: just over the radius, and at least 1″ so the zone count stays ≤ 648,000. */
export function zoneHeightDeg(g: RadiusGeometry): number {
  return Math.max(g.radiusDeg * (1 + 1e-6), 1 / 3600);
}

/** The zone of a declination. */
export function zoneOf(dec: number, h: number): number {
  return Math.floor((dec + 90) / h);
}

/** RA half-width (degrees) of the search window for left rows of zone z; Infinity when the zone's circles reach a pole. */
export function zoneRaHalfWidth(g: RadiusGeometry, z: number, h: number): number {
  const lo = -90 + z * h;
  const absMax = Math.min(90, Math.max(Math.abs(lo), Math.abs(lo + h)));
  return raHalfWidthDeg(g, absMax);
}

/** One side's rows laid out by zone, each zone sorted by RA, with the columns the sweep reads gathered in that order. */
export interface ZoneTable {
  /** First zone present, and the number of zones from it. */
  zmin: number;
  nz: number;
  /** Segment of zone zmin + k: [start[k], start[k + 1]); its rows without RA copies: [coreStart[k], coreEnd[k]). */
  start: Int32Array;
  coreStart: Int32Array;
  coreEnd: Int32Array;
  /** RA in degrees as sorted (copies shifted by ±360°). */
  key: Float64Array;
  /** Original RA and Dec in radians, cos(dec). */
  ra: Float64Array;
  dec: Float64Array;
  cos: Float64Array;
  /** Row index in the RowSet (for id ties) and the row's ordinal (for output). */
  row: Uint32Array;
  ord: Uint32Array;
}

/**
 * Builds the zone table of `rows`. With `copies` (the right side), rows within the widest RA
 * window any neighbouring left zone uses of RA 0 or 360 get a shifted copy.
 */
export function buildZones(rows: RowSet, g: RadiusGeometry, h: number, copies: boolean): ZoneTable {
  const n = rows.length;
  const zone = new Int32Array(n);
  let zmin = Infinity;
  let zmax = -Infinity;
  for (let i = 0; i < n; i++) {
    const z = zoneOf(rows.dec[i], h);
    zone[i] = z;
    if (z < zmin) zmin = z;
    if (z > zmax) zmax = z;
  }
  if (n === 0) {
    zmin = 0;
    zmax = -1;
  }
  const nz = zmax - zmin + 1;
  // Copy width per zone: the widest finite window of the left zones z-1, z, z+1 that look at it.
  const copyW = new Float64Array(Math.max(nz, 0));
  if (copies) {
    for (let k = 0; k < nz; k++) {
      let w = 0;
      for (let d = -1; d <= 1; d++) {
        const hw = zoneRaHalfWidth(g, zmin + k + d, h);
        if (Number.isFinite(hw) && hw > w) w = hw;
      }
      copyW[k] = w;
    }
  }
  const count = new Int32Array(nz + 1);
  const low = new Int32Array(nz);
  const core = new Int32Array(nz);
  for (let i = 0; i < n; i++) {
    const k = zone[i] - zmin;
    core[k]++;
    if (copies) {
      const ra = rows.ra[i];
      if (ra <= copyW[k]) count[k]++;
      if (ra >= 360 - copyW[k]) { count[k]++; low[k]++; }
    }
  }
  const start = new Int32Array(nz + 1);
  for (let k = 0; k < nz; k++) start[k + 1] = start[k] + core[k] + count[k];
  const total = start[nz];
  // Rows are scattered to their zone segments reading the RowSet in order (sequential reads),
  // then each segment is sorted with a permutation that stays inside the segment, so the final
  // gather touches only nearby memory: random reads of a million-row column would dominate.
  const key = new Float64Array(total);
  const ra0 = new Float64Array(total);
  const dec0 = new Float64Array(total);
  const row0 = new Uint32Array(total);
  const ord0 = new Uint32Array(total);
  const ordinals = rows.ordinal;
  const fill = start.slice(0, Math.max(nz, 0));
  const rowsRa = rows.ra;
  const rowsDec = rows.dec;
  for (let i = 0; i < n; i++) {
    const k = zone[i] - zmin;
    const a = rowsRa[i];
    const d = rowsDec[i];
    const o = ordinals[i];
    let p = fill[k]++;
    key[p] = a; ra0[p] = a; dec0[p] = d; row0[p] = i; ord0[p] = o;
    if (copies) {
      if (a <= copyW[k]) { p = fill[k]++; key[p] = a + 360; ra0[p] = a; dec0[p] = d; row0[p] = i; ord0[p] = o; }
      if (a >= 360 - copyW[k]) { p = fill[k]++; key[p] = a - 360; ra0[p] = a; dec0[p] = d; row0[p] = i; ord0[p] = o; }
    }
  }
  const perm = new Uint32Array(total);
  for (let p = 0; p < total; p++) perm[p] = p;
  const coreStart = new Int32Array(nz);
  const coreEnd = new Int32Array(nz);
  for (let k = 0; k < nz; k++) {
    sortWithPayload(key, perm, start[k], start[k + 1]);
    coreStart[k] = start[k] + low[k];
    coreEnd[k] = coreStart[k] + core[k];
  }
  const ra = new Float64Array(total);
  const dec = new Float64Array(total);
  const cos = new Float64Array(total);
  const row = new Uint32Array(total);
  const ord = new Uint32Array(total);
  for (let p = 0; p < total; p++) {
    const q = perm[p];
    const d = dec0[q] * DEG;
    ra[p] = ra0[q] * DEG;
    dec[p] = d;
    cos[p] = Math.cos(d);
    row[p] = row0[q];
    ord[p] = ord0[q];
  }
  return { zmin, nz, start, coreStart, coreEnd, key, ra, dec, cos, row, ord };
}
