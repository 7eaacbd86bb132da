/**
 * Great-circle geometry of the matcher. Separations use the haversine form
 * hav(θ) = sin²(Δδ/2) + cos δ₁ cos δ₂ sin²(Δα/2), which keeps full relative precision at tiny
 * angles (no 1 − cos cancellation) and needs no special case at RA 0/360 (sin² has period π in
 * Δα/2) or at the poles. Whether a pair is within the radius is decided on hav alone
 * (`hav ≤ havRadius`), one predicate used everywhere, so every path agrees on boundary pairs.
 */

/** Degrees to radians. */
export const DEG = Math.PI / 180;
/** Arcseconds per radian. */
export const ARCSEC_PER_RAD = 180 * 3600 / Math.PI;
/** Relative slack for pre-filters (windows, zones, bands): they may let extra candidates through, never drop one. */
const SLACK = 1 + 1e-9;

/** hav(θ) for two positions in radians, with cos δ of each precomputed. */
export function haversine(ra1: number, dec1: number, cos1: number, ra2: number, dec2: number, cos2: number): number {
  const sd = Math.sin((dec2 - dec1) / 2);
  const sa = Math.sin((ra2 - ra1) / 2);
  return sd * sd + cos1 * cos2 * sa * sa;
}

/** The separation in arcseconds for a haversine value. */
export function havToArcsec(hav: number): number {
  return 2 * Math.asin(Math.sqrt(Math.min(1, hav))) * ARCSEC_PER_RAD;
}

/** The separation in arcseconds of two positions in degrees. */
export function separationArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d1 = dec1 * DEG;
  const d2 = dec2 * DEG;
  return havToArcsec(haversine(ra1 * DEG, d1, Math.cos(d1), ra2 * DEG, d2, Math.cos(d2)));
}

/** Fixed quantities of one match radius. */
export interface RadiusGeometry {
  /** Radius in degrees, and in degrees widened by the pre-filter slack. */
  radiusDeg: number;
  marginDeg: number;
  /** Radius in radians widened by the slack (declination pre-filter). */
  marginRad: number;
  /** hav(radius): the one within-radius threshold. */
  havRadius: number;
  /** sin(radius), for RA half-widths. */
  sinRadius: number;
}

/** Geometry for a radius in arcseconds. */
export function radiusGeometry(radiusArcsec: number): RadiusGeometry {
  const rad = radiusArcsec / ARCSEC_PER_RAD;
  const s = Math.sin(rad / 2);
  return {
    radiusDeg: radiusArcsec / 3600,
    marginDeg: (radiusArcsec / 3600) * SLACK + 1e-12,
    marginRad: rad * SLACK + 1e-14,
    havRadius: s * s,
    sinRadius: Math.sin(rad),
  };
}

/**
 * Half-width in RA (degrees) of every point within the radius of a point with |dec| ≤ absDec:
 * asin(sin r / cos δ), the RA extent of a small circle. Infinity when the circle reaches a pole
 * (every RA is then possible).
 */
export function raHalfWidthDeg(g: RadiusGeometry, absDec: number): number {
  if (absDec + g.marginDeg >= 90) return Infinity;
  const c = Math.cos(absDec * DEG);
  const x = (g.sinRadius * SLACK) / c;
  if (x >= 1) return Infinity;
  return (Math.asin(x) / DEG) * SLACK + 1e-12;
}

/** RA folded into [0, 360). */
export function normalizeRa(ra: number): number {
  if (ra >= 0 && ra < 360) return ra;
  const r = ra % 360;
  return r < 0 ? (r + 360 === 360 ? 0 : r + 360) : r;
}
