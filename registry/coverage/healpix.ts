/**
 * HEALPix NESTED geometry for every order 0–29, in plain doubles.
 *
 * @hscmap/healpix is not used here: its bit interleaving is 32-bit and stops at order 15,
 * while MOC 2.0 goes to order 29. Formulas follow Górski et al. (2005) and the HEALPix C++
 * pix2loc / loc2pix. Cells are addressed by (order, face, x, y) with x, y < 2^order, which
 * stays exact in doubles up to order 29 without BigInt.
 */

/** The finest HEALPix order a MOC 2.0 space coverage may use. */
export const MAX_ORDER = 29;

/** Below this order a NESTED index fits a double exactly (12·4^24 < 2^53); finer orders split into hi/lo parts. */
export const SAFE_ORDER = 24;

const JRLL = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4];
const JPLL = [1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7];
const HALF_PI = Math.PI / 2;

/** 4^k for k = 0..29 as exact doubles (4^29 = 2^58 is a power of two, so still exact). */
export const POW4: readonly number[] = Array.from({ length: 30 }, (_, k) => 4 ** k);

/** Number of cells at `order`: 12·4^order (exact as a double up to order 29, a power-of-two multiple of 12). */
export function cellCount(order: number): number {
  return 12 * POW4[order];
}

/** A unit vector; functions write into one to keep hot loops allocation-free. */
export type Vec3 = Float64Array;

/** A fresh zero vector. */
export function vec3(): Vec3 {
  return new Float64Array(3);
}

/** Unit vector of an equatorial position in degrees. */
export function radecToVec(raDeg: number, decDeg: number, out: Vec3 = vec3()): Vec3 {
  const ra = (raDeg * Math.PI) / 180;
  const dec = (decDeg * Math.PI) / 180;
  const c = Math.cos(dec);
  out[0] = c * Math.cos(ra);
  out[1] = c * Math.sin(ra);
  out[2] = Math.sin(dec);
  return out;
}

/** Centre of cell (order, face, x, y) as a unit vector (HEALPix C++ pix2loc, NESTED). */
export function cellCenter(order: number, f: number, x: number, y: number, out: Vec3): Vec3 {
  const nside = 2 ** order;
  const jr = JRLL[f] * nside - x - y - 1;
  let nr: number;
  let z: number;
  let sth: number;
  if (jr < nside) {
    nr = jr;
    const q = nr / nside;
    const tmp = (q * q) / 3;
    z = 1 - tmp;
    // 1 - z loses precision next to the pole; tmp does not.
    sth = Math.sqrt(tmp * (2 - tmp));
  } else if (jr > 3 * nside) {
    nr = 4 * nside - jr;
    const q = nr / nside;
    const tmp = (q * q) / 3;
    z = tmp - 1;
    sth = Math.sqrt(tmp * (2 - tmp));
  } else {
    nr = nside;
    z = ((2 * nside - jr) * 2) / (3 * nside);
    sth = Math.sqrt((1 - z) * (1 + z));
  }
  let t = JPLL[f] * nr + x - y;
  if (t < 0) t += 8 * nr;
  const phi = (Math.PI / 4) * (t / nr);
  out[0] = sth * Math.cos(phi);
  out[1] = sth * Math.sin(phi);
  out[2] = z;
  return out;
}

const centerTables: Float64Array[] = [];

/**
 * Centres of every cell at a coarse order (≤ 8), indexed by NESTED index (x, y, z at 3·idx):
 * cone walks over the index's bucket orders then skip the trigonometry. Built once per order.
 */
export function centerTable(order: number): Float64Array {
  let t = centerTables[order];
  if (t === undefined) {
    if (order > 8) throw new RangeError(`centre tables stop at order 8 (got ${order})`);
    const n = cellCount(order);
    t = new Float64Array(3 * n);
    const v = vec3();
    for (let i = 0; i < n; i++) {
      const { f, x, y } = nestToFxy(order, i);
      cellCenter(order, f, x, y, v);
      t.set(v, 3 * i);
    }
    centerTables[order] = t;
  }
  return t;
}

/** A cell as base face (0–11) and its x (north-east) and y (north-west) indices within the face. */
export interface FaceXY {
  f: number;
  x: number;
  y: number;
}

/** The cell at `order` holding the direction v, which need not be normalised (HEALPix C++ loc2pix, NESTED). */
export function vecToCell(order: number, v: ArrayLike<number>): FaceXY {
  const nside = 2 ** order;
  const r = Math.hypot(v[0], v[1], v[2]);
  const z = v[2] / r;
  const sthRaw = Math.hypot(v[0], v[1]) / r;
  let phi = Math.atan2(v[1], v[0]);
  if (phi < 0) phi += 2 * Math.PI;
  let tt = phi / HALF_PI;
  tt = tt - 4 * Math.floor(tt / 4);
  if (tt >= 4) tt = 0;
  const za = Math.abs(z);
  if (za <= 2 / 3) {
    const temp1 = nside * (0.5 + tt);
    const temp2 = nside * (z * 0.75);
    const jp = Math.floor(temp1 - temp2);
    const jm = Math.floor(temp1 + temp2);
    const ifp = Math.floor(jp / nside);
    const ifm = Math.floor(jm / nside);
    const f = ifp === ifm ? (ifp === 4 ? 4 : ifp + 4) : ifp < ifm ? ifp : ifm + 8;
    const x = jm - Math.floor(jm / nside) * nside;
    const y = nside - (jp - Math.floor(jp / nside) * nside) - 1;
    return { f, x, y };
  }
  const ntt = Math.min(3, Math.floor(tt));
  const tp = tt - ntt;
  // Near the poles 1 - |z| cancels; sin(theta) keeps full precision.
  const tmp = za < 0.99 ? nside * Math.sqrt(3 * (1 - za)) : (nside * sthRaw) / Math.sqrt((1 + za) / 3);
  const jp = Math.min(Math.floor(tp * tmp), nside - 1);
  const jm = Math.min(Math.floor((1 - tp) * tmp), nside - 1);
  return z >= 0 ? { f: ntt, x: nside - jm - 1, y: nside - jp - 1 } : { f: ntt + 8, x: jp, y: jm };
}

// Byte → its bits spread onto even positions, and the inverse on 16-bit words.
const SPREAD8 = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  let s = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) s |= 1 << (2 * i);
  SPREAD8[b] = s;
}
const COMPACT8 = new Uint8Array(65536);
for (let w = 0; w < 65536; w++) {
  let c = 0;
  for (let i = 0; i < 8; i++) if (w & (1 << (2 * i))) c |= 1 << i;
  COMPACT8[w] = c;
}

/** Spread the low 16 bits of v onto the even bits of a 32-bit result (returned as a non-negative double). */
function spread16(v: number): number {
  return SPREAD8[v & 255] + SPREAD8[(v >>> 8) & 255] * 65536;
}

/** Interleave x (even bits) and y (odd bits), for x, y < 2^24: exact below 2^48. */
export function interleave(x: number, y: number): number {
  const lo = spread16(x & 0xffff) + 2 * spread16(y & 0xffff);
  const hi = SPREAD8[x >>> 16] + 2 * SPREAD8[y >>> 16];
  return hi * 4294967296 + lo;
}

/** Inverse of {@link interleave} for values below 2^48. */
export function deinterleave(m: number): { x: number; y: number } {
  const lo = m % 4294967296;
  const hi = (m - lo) / 4294967296;
  const lo0 = lo % 65536;
  const lo1 = (lo - lo0) / 65536;
  const x = COMPACT8[lo0] | (COMPACT8[lo1] << 8) | (COMPACT8[hi & 0xffff] << 16);
  const y = COMPACT8[lo0 >>> 1] | (COMPACT8[lo1 >>> 1] << 8) | (COMPACT8[(hi & 0xffff) >>> 1] << 16);
  return { x, y };
}

/** NESTED index of (face, x, y) at an order ≤ 24, exact as a double. */
export function nestIndex(order: number, f: number, x: number, y: number): number {
  return f * POW4[order] + interleave(x, y);
}

/** (face, x, y) of a NESTED index at an order ≤ 24. */
export function nestToFxy(order: number, idx: number): FaceXY {
  const per = POW4[order];
  const f = Math.floor(idx / per);
  const { x, y } = deinterleave(idx - f * per);
  return { f, x, y };
}

/** NESTED index of (face, x, y) at any order, as a BigInt. */
export function nestIndexBig(order: number, f: number, x: number, y: number): bigint {
  if (order <= SAFE_ORDER) return BigInt(nestIndex(order, f, x, y));
  const k = order - SAFE_ORDER;
  const low = 2 ** k;
  const xl = x % low;
  const yl = y % low;
  const hi = nestIndex(SAFE_ORDER, f, (x - xl) / low, (y - yl) / low);
  return (BigInt(hi) << BigInt(2 * k)) + BigInt(interleave(xl, yl));
}

/** (face, x, y) of a NESTED index at any order. */
export function nestToFxyBig(order: number, idx: bigint): FaceXY {
  if (order <= SAFE_ORDER) return nestToFxy(order, Number(idx));
  const k = order - SAFE_ORDER;
  const shift = BigInt(2 * k);
  const hi = nestToFxy(SAFE_ORDER, Number(idx >> shift));
  const lo = deinterleave(Number(idx & ((1n << shift) - 1n)));
  const low = 2 ** k;
  return { f: hi.f, x: hi.x * low + lo.x, y: hi.y * low + lo.y };
}

function angleBetween(a: Vec3, b: Vec3): number {
  const cx = a[1] * b[2] - a[2] * b[1];
  const cy = a[2] * b[0] - a[0] * b[2];
  const cz = a[0] * b[1] - a[1] * b[0];
  return Math.atan2(Math.hypot(cx, cy, cz), a[0] * b[0] + a[1] * b[1] + a[2] * b[2]);
}

function zPhiToVec(z: number, phi: number): Vec3 {
  const s = Math.sqrt((1 - z) * (1 + z));
  return Float64Array.of(s * Math.cos(phi), s * Math.sin(phi), z);
}

/**
 * Largest angle (radians) between a cell centre and any point of that cell at `order`
 * (HEALPix max_pixrad), padded for rounding so that cone tests built on it stay conservative.
 */
export const MAX_PIXRAD: readonly number[] = Array.from({ length: 30 }, (_, order) => {
  const nside = 2 ** order;
  const va = zPhiToVec(2 / 3, Math.PI / (4 * nside));
  const t1 = (1 - 1 / nside) ** 2;
  const vb = zPhiToVec(1 - t1 / 3, 0);
  return angleBetween(va, vb) * (1 + 1e-9) + 1e-12;
});

/** Squared chord length of an angle: comparing chord² keeps full precision for tiny angles, unlike cosines. */
export function chord2(angle: number): number {
  if (angle >= Math.PI) return Infinity;
  if (angle < 0) return -1;
  const s = 2 * Math.sin(angle / 2);
  return s * s;
}
