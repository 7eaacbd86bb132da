/**
 * Reading a coverage MOC (IVOA MOC 2.0 ASCII, as Replica.coverage gives it) into sorted, merged
 * NESTED ranges at order 24 for drawing. Finer cells are widened to their order-24 parent (12
 * arcseconds), far below what a map pixel shows, so every bound stays an exact double.
 */

/** The order ranges are kept at: 12·4^24 < 2^53, so every bound is exact. */
export const RANGE_ORDER = 24;

/** A coverage ready to draw: [start, end) pairs at RANGE_ORDER, sorted and disjoint, and how many cells the MOC listed. */
export interface DrawableMoc {
  ranges: Float64Array;
  cells: number;
}

/** A MOC the console cannot read: names the token and where it is. */
export class MocReadError extends Error {}

/** Parse MOC 2.0 ASCII (`order/cell cell-cell ... order/...`); whitespace and line breaks anywhere. */
export function readMoc(text: string): DrawableMoc {
  const pairs: [number, number][] = [];
  let order = -1;
  let cells = 0;
  const tokens = text.trim().split(/[\s,]+/).filter(Boolean);
  for (const [at, raw] of tokens.entries()) {
    let token = raw;
    const slash = token.indexOf('/');
    if (slash >= 0) {
      const o = Number(token.slice(0, slash));
      if (!/^\d+$/.test(token.slice(0, slash)) || o > 29) throw new MocReadError(`token ${at + 1} ("${raw.slice(0, 20)}"): bad order`);
      order = o;
      token = token.slice(slash + 1);
      if (token === '') continue;
    }
    if (order < 0) throw new MocReadError(`token ${at + 1} ("${raw.slice(0, 20)}"): a cell before any order`);
    const m = /^(\d+)(?:-(\d+))?$/.exec(token);
    if (!m) throw new MocReadError(`token ${at + 1} ("${raw.slice(0, 20)}"): not a cell or a range of cells`);
    const first = BigInt(m[1]);
    const last = m[2] === undefined ? first : BigInt(m[2]);
    if (last < first || last >= 12n * 4n ** BigInt(order)) throw new MocReadError(`token ${at + 1} ("${raw.slice(0, 20)}"): cells out of order ${order}`);
    cells += Number(last - first + 1n);
    // At RANGE_ORDER: a coarser cell spans 4^(24-order) cells; a finer one falls inside its parent.
    if (order <= RANGE_ORDER) {
      const span = 4n ** BigInt(RANGE_ORDER - order);
      pairs.push([Number(first * span), Number((last + 1n) * span)]);
    } else {
      const shrink = 4n ** BigInt(order - RANGE_ORDER);
      pairs.push([Number(first / shrink), Number(last / shrink) + 1]);
    }
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [start, end] of pairs) {
    const n = merged.length;
    if (n > 0 && start <= merged[n - 1]) merged[n - 1] = Math.max(merged[n - 1], end);
    else merged.push(start, end);
  }
  return { ranges: Float64Array.from(merged), cells };
}

/** The whole sky, for a replica that gave no coverage (the broker treats it as whole sky too). */
export const WHOLE_SKY: DrawableMoc = { ranges: Float64Array.from([0, 12 * 4 ** RANGE_ORDER]), cells: 12 };

/** Whether [start, end) at RANGE_ORDER meets any range of `moc` (binary search). */
export function touches(moc: DrawableMoc, start: number, end: number): boolean {
  const r = moc.ranges;
  let lo = 0;
  let hi = r.length / 2;
  // First range whose end is past start.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (r[2 * mid + 1] <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < r.length / 2 && r[2 * lo] < end;
}
