/**
 * The Mollweide equal-area projection of the whole sky, centred on RA 0 with RA increasing to
 * the left (east left, as the sky is seen from inside). Plane coordinates: x in [-2√2, 2√2], y in [-√2, √2].
 */

const SQRT2 = Math.SQRT2;
const DEG = Math.PI / 180;

/** Plane coordinates of (ra, dec) in degrees. */
export function project(raDeg: number, decDeg: number): { x: number; y: number } {
  let lon = -(((raDeg % 360) + 360) % 360);
  if (lon < -180) lon += 360;
  const phi = decDeg * DEG;
  // Solve 2θ + sin 2θ = π sin φ by Newton's method; at the poles θ = ±π/2.
  let theta = phi;
  if (Math.abs(Math.abs(phi) - Math.PI / 2) < 1e-10) theta = phi;
  else {
    for (let i = 0; i < 50; i++) {
      const f = 2 * theta + Math.sin(2 * theta) - Math.PI * Math.sin(phi);
      const d = f / (2 + 2 * Math.cos(2 * theta));
      theta -= d;
      if (Math.abs(d) < 1e-12) break;
    }
  }
  return { x: ((2 * SQRT2) / Math.PI) * lon * DEG * Math.cos(theta), y: SQRT2 * Math.sin(theta) };
}

/** (ra, dec) in degrees of a plane point, or undefined outside the ellipse. */
export function unproject(x: number, y: number): { ra: number; dec: number } | undefined {
  if ((x * x) / 8 + (y * y) / 2 > 1) return undefined;
  const theta = Math.asin(Math.max(-1, Math.min(1, y / SQRT2)));
  const dec = Math.asin(Math.max(-1, Math.min(1, (2 * theta + Math.sin(2 * theta)) / Math.PI))) / DEG;
  const cos = Math.cos(theta);
  const lon = cos < 1e-12 ? 0 : (Math.PI * x) / (2 * SQRT2 * cos) / DEG;
  const ra = ((-lon % 360) + 360) % 360;
  return { ra, dec };
}

/** Canvas pixel (centre) of a plane point on a width × height canvas (width = 2 × height). */
export function toCanvas(p: { x: number; y: number }, width: number, height: number): { px: number; py: number } {
  return { px: ((p.x / (2 * SQRT2) + 1) / 2) * width, py: ((1 - p.y / SQRT2) / 2) * height };
}

/** Plane point of the centre of canvas pixel (px, py). */
export function fromCanvas(px: number, py: number, width: number, height: number): { x: number; y: number } {
  return { x: (((px + 0.5) / width) * 2 - 1) * 2 * SQRT2, y: (1 - ((py + 0.5) / height) * 2) * SQRT2 };
}
