/**
 * Decimal text for VOTable reals at their declared precision. A `double` is written as
 * JavaScript writes it (the shortest text that reads back to the same double); a `float` as the
 * shortest decimal that reads back to the same float32 (`Math.fround(Number(text)) === value`),
 * not the 17 digits of its widening to double (15.278674 rather than 15.278674125671387).
 */

/** Exact powers of ten as doubles (10^22 is the largest that is exact). */
const P10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/**
 * 10^k for k = -6…20, the decades of the fast range. Below 1 these are the nearest doubles to the
 * powers, not the powers: a float32 could only fall in the wrong decade by being that very
 * double, and even then the digits found still read back (the tests check every float32 near
 * each power for the shortest).
 */
const DECADE_MIN = -6;
const DECADES = Float64Array.from({ length: 27 }, (_, i) => Number(`1e${i + DECADE_MIN}`));

/**
 * What `float32Digits` found: the value is `digits` × 10^`exponent`, `digits` without trailing
 * zeros. Module state rather than a returned object, so the hot loop allocates nothing.
 */
export const shortest = { digits: 0, exponent: 0 };

/**
 * The shortest decimal that reads back to float32 `a` (0 < a, finite, Math.fround(a) === a),
 * left in `shortest`; false when `a` is outside 1e-6 ≤ a < 1e20 (JavaScript writes plain
 * decimals below 1e21; the margin keeps a rounded-up result below it), for `float32Text`.
 *
 * At k significant digits the two k-digit decimals around `a` are r·10^p and (r+1)·10^p. Both
 * r and 10^|p| are exact doubles here (r < 2^31, |p| ≤ 22), so one IEEE multiplication or
 * division gives exactly the double that parsing their text gives: testing it with fround is
 * testing the round trip itself, with no string made.
 */
export function float32Digits(a: number): boolean {
  if (!(a >= 1e-6 && a < 1e20)) return false;
  // The decimal exponent: 10^e ≤ a < 10^(e+1), by bisection over the powers (no log10 call).
  let lo = 0;
  let hi = DECADES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (a >= DECADES[mid]) lo = mid;
    else hi = mid;
  }
  const e = lo + DECADE_MIN;
  // Most float32 values need 7 to 9 digits: try 7, then fewer while that still reads back, else 8
  // and 9. A decimal of fewer digits is also one of more, so once a count fails every smaller
  // count fails too. A failed try leaves `shortest` as the last successful one set it.
  if (tryDigits(a, e - 6)) {
    for (let k = 6; k >= 1 && tryDigits(a, e - k + 1); k--);
  } else if (!tryDigits(a, e - 7) && !tryDigits(a, e - 8)) {
    return false;
  }
  let d = shortest.digits | 0;
  let x = shortest.exponent;
  // A carry (9999999 + 1) leaves trailing zeros.
  for (let m = (d / 10) | 0; m * 10 === d; m = (d / 10) | 0) {
    d = m;
    x++;
  }
  shortest.digits = d;
  shortest.exponent = x;
  return true;
}

/** Whether a decimal with digits at 10^p reads back to `a`; if so the nearer such one goes to `shortest`. */
function tryDigits(a: number, p: number): boolean {
  if (p < -22 || p > 22) return false;
  const s = p < 0 ? a * P10[-p] : a / P10[p];
  const lo = Math.floor(s);
  const v1 = p < 0 ? lo / P10[-p] : lo * P10[p];
  const v2 = p < 0 ? (lo + 1) / P10[-p] : (lo + 1) * P10[p];
  const ok1 = lo > 0 && Math.fround(v1) === a;
  const ok2 = Math.fround(v2) === a;
  if (!ok1 && !ok2) return false;
  shortest.digits = ok1 && (!ok2 || a - v1 <= v2 - a) ? lo : lo + 1;
  shortest.exponent = p;
  return true;
}

/** `digits` × 10^`exponent` as JavaScript writes such a number in 1e-6 ≤ x < 1e21: plain, no exponent. */
export function plainDecimal(digits: number, exponent: number): string {
  const d = String(digits);
  if (exponent >= 0) return exponent === 0 ? d : d + '0'.repeat(exponent);
  const point = d.length + exponent;
  return point > 0 ? `${d.slice(0, point)}.${d.slice(point)}` : `0.${'0'.repeat(-point)}${d}`;
}

/**
 * The shortest text of a float32 value `x` that reads back to it, spelled as JavaScript spells
 * numbers ("15.278674", "1e-45", "3.4028235e+38"); -0 keeps its sign; NaN and the infinities
 * as JavaScript writes them.
 */
export function float32Text(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  if (x - x !== 0) return String(x);
  const a = x < 0 ? -x : x;
  if (float32Digits(a)) return (x < 0 ? '-' : '') + plainDecimal(shortest.digits, shortest.exponent);
  return (x < 0 ? '-' : '') + float32TextSlow(a);
}

/**
 * The same for values outside the fast range (subnormals, tiny and huge floats): the nearest
 * k-digit decimal and its two neighbours, k = 1…9, each checked by parsing it.
 */
function float32TextSlow(a: number): string {
  for (let k = 1; k <= 9; k++) {
    const [mantissa, exp] = a.toExponential(k - 1).split('e');
    const digits = Number(mantissa.replace('.', ''));
    const scale = Number(exp) - (k - 1);
    let best: number | undefined;
    for (const d of [digits, digits + 1, digits - 1]) {
      if (d <= 0) continue;
      const v = Number(`${d}e${scale}`);
      if (Math.fround(v) === a && (best === undefined || Math.abs(v - a) < Math.abs(best - a))) best = v;
    }
    if (best !== undefined) return String(best);
  }
  // Nine digits always identify a float32; not reached.
  return String(a);
}

/** A double as JavaScript writes it, except that -0 keeps its sign. */
export function doubleText(x: number): string {
  return x === 0 && Object.is(x, -0) ? '-0' : String(x);
}
