/**
 * Row, area and pair estimates behind the strategy planner. Rows inside a region come from a
 * replica's row count and coverage; rows inside a tile are the tile's share of the region (a
 * uniform density inside the region); reads widened by the match radius grow by the margin.
 */
import type { SMoc } from '../../registry/coverage/moc.js';
import type { MatchMode } from './types.js';

/** Steradians of the whole sphere. */
export const SKY_SR = 4 * Math.PI;

/** Arcseconds to radians. */
export function arcsecToRad(arcsec: number): number {
  return (arcsec / 3600) * (Math.PI / 180);
}

/** Area of a MOC in steradians. */
export function mocAreaSr(moc: SMoc): number {
  return moc.skyFraction() * SKY_SR;
}

/** Area of a spherical cap of angular radius `radiusRad` (sin² form: exact for tiny caps). */
export function capAreaSr(radiusRad: number): number {
  if (radiusRad >= Math.PI) return SKY_SR;
  const s = Math.sin(radiusRad / 2);
  return SKY_SR * s * s;
}

/**
 * Estimated rows of a replica inside the region: rows × area(coverage ∩ region) / area(coverage).
 * Unknown coverage counts as the whole sky.
 */
export function rowsInRegion(rows: number, coverage: SMoc | null, region: SMoc): number {
  if (rows <= 0 || region.isEmpty()) return 0;
  if (coverage === null) return rows * region.skyFraction();
  const whole = coverage.skyFraction();
  if (whole === 0) return 0;
  return (rows * coverage.intersection(region).skyFraction()) / whole;
}

/**
 * Area read for a piece of area `areaSr` widened by `radiusRad` on every side: the piece taken as
 * a square, (√a + 2r)². For tiles this is a good estimate and grows monotonically with the
 * area, so finer tilings never look cheaper than coarser ones.
 */
export function widenedAreaSr(areaSr: number, radiusRad: number): number {
  if (areaSr <= 0) return 0;
  const side = Math.sqrt(areaSr) + 2 * radiusRad;
  return Math.min(SKY_SR, side * side);
}

/** Area of the whole region widened by the radius: exact for a cone, the square rule otherwise. */
export function widenedRegionAreaSr(regionAreaSr: number, coneRadiusDeg: number | null, radiusRad: number): number {
  if (coneRadiusDeg === null) return widenedAreaSr(regionAreaSr, radiusRad);
  const coneRad = (coneRadiusDeg * Math.PI) / 180;
  // Scaled by the MOC's own area so the ratio to the region stays that of the cone.
  return regionAreaSr * (capAreaSr(coneRad + radiusRad) / capAreaSr(coneRad));
}

/** Estimated pairs of a cross-match, both every pair within the radius and what `mode` keeps. */
export interface PairEstimate {
  /** Every pair within the radius: what a site join returns. */
  all: number;
  /** The result rows for the mode (BEST keeps at most one per left row). */
  result: number;
}

/**
 * Pairs of `left` × `right` rows spread over `areaSr`. The two catalogues are taken to see the
 * same sources, so min(left, right) true pairs, plus chance pairs: each left row meets
 * right-density × π r² unrelated right rows on average.
 */
export function estimatePairs(left: number, right: number, areaSr: number, radiusRad: number, mode: MatchMode): PairEstimate {
  if (left <= 0 || right <= 0 || areaSr <= 0) return { all: 0, result: 0 };
  const chancePerLeft = (right / areaSr) * Math.PI * radiusRad * radiusRad;
  const all = Math.min(left * right, Math.min(left, right) + left * chancePerLeft);
  return { all, result: mode === 'ALL' ? all : Math.min(left, all) };
}

/** Bytes of one result row: both sides' columns and sep_arcsec (a double). */
export function pairRowBytes(leftRowBytes: number, rightRowBytes: number): number {
  return leftRowBytes + rightRowBytes + 8;
}
