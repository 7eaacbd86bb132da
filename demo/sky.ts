/**
 * Spherical geometry for the demo catalogues, in degrees: exact separations (stable at tiny
 * angles, across RA 0/360 and at the poles) and moving a point by a separation along a bearing.
 */

const RAD = Math.PI / 180;

/** A rectangle in RA/Dec (degrees); raMin > raMax means it crosses RA 0/360. */
export interface SkyBox {
  raMin: number;
  raMax: number;
  decMin: number;
  decMax: number;
}

/** RA folded into [0, 360). */
export function normalizeRa(ra: number): number {
  const r = ra % 360;
  return r < 0 ? r + 360 : r === 360 ? 0 : r;
}

/** Great-circle separation in degrees (Vincenty's form: atan2 of two sums, accurate near 0° and 180°). */
export function separationDeg(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d1 = dec1 * RAD;
  const d2 = dec2 * RAD;
  const dl = (ra2 - ra1) * RAD;
  const c2 = Math.cos(d2);
  const y = Math.hypot(c2 * Math.sin(dl), Math.cos(d1) * Math.sin(d2) - Math.sin(d1) * c2 * Math.cos(dl));
  const x = Math.sin(d1) * Math.sin(d2) + Math.cos(d1) * c2 * Math.cos(dl);
  return Math.atan2(y, x) / RAD;
}

/**
 * The point `sepDeg` from (ra, dec) along the great circle leaving it at position angle
 * `paDeg` (0 north, 90 east); vector form, so it is exact across RA 0/360 and next to a pole.
 */
export function offsetPosition(ra: number, dec: number, sepDeg: number, paDeg: number): { ra: number; dec: number } {
  const a = ra * RAD;
  const d = dec * RAD;
  const s = sepDeg * RAD;
  const pa = paDeg * RAD;
  const p = [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
  const north = [-Math.sin(d) * Math.cos(a), -Math.sin(d) * Math.sin(a), Math.cos(d)];
  const east = [-Math.sin(a), Math.cos(a), 0];
  const cs = Math.cos(s);
  const sn = Math.sin(s);
  const v = [0, 1, 2].map((i) => p[i] * cs + (north[i] * Math.cos(pa) + east[i] * Math.sin(pa)) * sn);
  return { ra: normalizeRa(Math.atan2(v[1], v[0]) / RAD), dec: Math.atan2(v[2], Math.hypot(v[0], v[1])) / RAD };
}

/** A uniform point on the sphere inside `box` (uniform in RA and in sin(dec)). */
export function pointInBox(box: SkyBox, random: () => number): { ra: number; dec: number } {
  const width = box.raMax >= box.raMin ? box.raMax - box.raMin : box.raMax + 360 - box.raMin;
  const sinMin = Math.sin(box.decMin * RAD);
  const sinMax = Math.sin(box.decMax * RAD);
  return {
    ra: normalizeRa(box.raMin + random() * width),
    dec: Math.asin(Math.min(1, sinMin + random() * (sinMax - sinMin))) / RAD,
  };
}

/** Whether (ra, dec) lies in `box` (RA wrap-aware). */
export function inBox(box: SkyBox, ra: number, dec: number): boolean {
  if (dec < box.decMin || dec > box.decMax) return false;
  const r = normalizeRa(ra);
  return box.raMax >= box.raMin ? r >= box.raMin && r <= box.raMax : r >= box.raMin || r <= box.raMax;
}

/** Unit vector of (ra, dec) in degrees. */
export function unitVector(ra: number, dec: number): [number, number, number] {
  const a = ra * RAD;
  const d = dec * RAD;
  return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
}
