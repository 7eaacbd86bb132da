/**
 * Space MOCs (IVOA MOC 2.0): exact HEALPix coverage, its ASCII and JSON serialisations, set
 * algebra and cone tests.
 *
 * A MOC is held as order-29 NESTED ranges (see ranges.ts) plus its declared maximum order. Every
 * range bound is a multiple of the cell size at maxOrder; all operations keep that true, and the
 * cone walks rely on it.
 */
import { Cone, checkCone, checkOrder, coneRanges, coveredInCone, rimCells, touchesCone } from './cone.js';
import { MAX_ORDER, POW4, SAFE_ORDER, cellCount, interleave, radecToVec, vecToCell } from './healpix.js';
import type { MocLimits } from './limits.js';
import {
  FULL_END,
  NO_RANGES,
  RangeBuilder,
  RangeLookup,
  alignedTo,
  countCells,
  degradeRanges,
  intersectRanges,
  rangesEqual,
  rangesOverlap,
  unionAll,
  unionRanges,
  type Ranges,
} from './ranges.js';

/** A malformed MOC ASCII string; `position` is the character offset of the offending token. */
export class MocSyntaxError extends Error {
  override readonly name = 'MocSyntaxError';
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

/** A MOC over a size cap (characters or cells, see limits.ts); `position` is where the cap was passed. */
export class MocTooLargeError extends MocSyntaxError {}

/** A malformed JSON MOC; `path` is a JSON pointer to the offending value. */
export class MocJsonError extends Error {
  override readonly name = 'MocJsonError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** Rim cells a cone walk may visit before it is refused as unreasonably fine. */
const MAX_RIM_CELLS = 4_000_000;

// Lets this module's parsers hand canonical ranges to the private constructor without re-checking.
let makeMoc: (ranges: Ranges, maxOrder: number) => SMoc;

/** An immutable space MOC. */
export class SMoc {
  static {
    makeMoc = (ranges, maxOrder) => new SMoc(ranges, maxOrder);
  }

  private lookupCache: RangeLookup | undefined;
  private cellsCache: number | undefined;

  private constructor(
    /** Order-29 ranges (see ranges.ts); do not mutate. */
    readonly ranges: Ranges,
    /** The declared resolution: no cell finer than this order. */
    readonly maxOrder: number,
  ) {}

  /** Build from order-29 ranges that are already sorted, disjoint, non-adjacent and aligned to maxOrder. */
  static fromRanges(ranges: Ranges, maxOrder: number): SMoc {
    checkOrder(maxOrder, 'maxOrder');
    for (let i = 0; i < ranges.length; i++) {
      const ok = ranges[i] >= 0n && ranges[i] <= FULL_END && (i === 0 || ranges[i] > ranges[i - 1]);
      if (!ok) throw new RangeError(`ranges are not sorted, disjoint and non-adjacent at index ${i}`);
    }
    if (ranges.length % 2 !== 0) throw new RangeError('ranges must hold start/end pairs');
    if (!alignedTo(ranges, maxOrder)) throw new RangeError(`ranges are finer than maxOrder ${maxOrder}`);
    return new SMoc(ranges, maxOrder);
  }

  /** The empty MOC. */
  static empty(maxOrder = 0): SMoc {
    checkOrder(maxOrder, 'maxOrder');
    return new SMoc(NO_RANGES, maxOrder);
  }

  /** The whole sky. */
  static fullSky(maxOrder = 0): SMoc {
    checkOrder(maxOrder, 'maxOrder');
    return new SMoc(BigInt64Array.of(0n, FULL_END), maxOrder);
  }

  /** The given cells of one order, in any sequence, duplicates allowed. */
  static fromCells(order: number, cells: Iterable<number | bigint>): SMoc {
    checkOrder(order);
    const max = BigInt(cellCount(order));
    const list: bigint[] = [];
    for (const c of cells) {
      const b = typeof c === 'bigint' ? c : Number.isSafeInteger(c) ? BigInt(c) : -1n;
      if (b < 0n || b >= max) throw new RangeError(`cell ${String(c)} is outside order ${order} (0-${max - 1n})`);
      list.push(b);
    }
    list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const shift = BigInt(2 * (MAX_ORDER - order));
    const out = new RangeBuilder();
    for (const c of list) out.push(c << shift, (c + 1n) << shift);
    return new SMoc(out.finish(), order);
  }

  /** Every cell at `order` that touches the cone (the inclusive HEALPix rule: centre within radius + max pixel radius). */
  static fromCone(raDeg: number, decDeg: number, radiusDeg: number, order: number): SMoc {
    const cone = new Cone(raDeg, decDeg, radiusDeg);
    checkOrder(order);
    const rim = rimCells(cone, order);
    if (rim > MAX_RIM_CELLS) {
      throw new RangeError(`order ${order} is too fine for a ${radiusDeg}° cone (about ${Math.round(rim)} rim cells); use a coarser order`);
    }
    return new SMoc(coneRanges(cone, order), order);
  }

  /** Whether no cell is covered. */
  isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Whether the whole sky is covered. */
  isFullSky(): boolean {
    return this.ranges.length === 2 && this.ranges[0] === 0n && this.ranges[1] === FULL_END;
  }

  /** Same cells and same maxOrder. */
  equals(other: SMoc): boolean {
    return this.maxOrder === other.maxOrder && rangesEqual(this.ranges, other.ranges);
  }

  /** Same cells, whatever the declared maxOrder. */
  sameCoverage(other: SMoc): boolean {
    return rangesEqual(this.ranges, other.ranges);
  }

  /** Cells in either; the finer maxOrder. */
  union(other: SMoc): SMoc {
    return new SMoc(unionRanges(this.ranges, other.ranges), Math.max(this.maxOrder, other.maxOrder));
  }

  /** Cells in both; the finer maxOrder. */
  intersection(other: SMoc): SMoc {
    return new SMoc(intersectRanges(this.ranges, other.ranges), Math.max(this.maxOrder, other.maxOrder));
  }

  /** Whether any cell is in both. */
  intersects(other: SMoc): boolean {
    return rangesOverlap(this.ranges, other.ranges);
  }

  /** The smallest MOC of resolution `order` containing this one (unchanged when order ≥ maxOrder). */
  degrade(order: number): SMoc {
    checkOrder(order);
    if (order >= this.maxOrder) return this;
    return new SMoc(degradeRanges(this.ranges, order), order);
  }

  /** Covered area as a fraction of the sphere (HEALPix cells are equal-area). */
  skyFraction(): number {
    return Number(countCells(this.ranges)) / Number(FULL_END);
  }

  /** Covered area in square degrees. */
  areaSqDeg(): number {
    return this.skyFraction() * ((4 * Math.PI * 180 * 180) / (Math.PI * Math.PI));
  }

  /** Whether the point lies in a covered cell. */
  containsPoint(raDeg: number, decDeg: number): boolean {
    checkCone(raDeg, decDeg, 1);
    const { f, x, y } = vecToCell(MAX_ORDER, radecToVec(raDeg, decDeg));
    const k = 2 ** (MAX_ORDER - SAFE_ORDER);
    const xl = x % k;
    const yl = y % k;
    const h = f * POW4[SAFE_ORDER] + interleave((x - xl) / k, (y - yl) / k);
    return this.lookup().containsPos(h, interleave(xl, yl));
  }

  /**
   * Whether a covered cell at maxOrder is among the cone's inclusive cells at maxOrder. Never false
   * when the disc and the coverage truly overlap; may be true up to about one maxOrder cell away.
   */
  intersectsCone(raDeg: number, decDeg: number, radiusDeg: number): boolean {
    return this.intersectsConeOf(new Cone(raDeg, decDeg, radiusDeg));
  }

  /** {@link intersectsCone} for a cone built once and tested against many MOCs. */
  intersectsConeOf(cone: Cone): boolean {
    if (this.isEmpty()) return false;
    if (this.isFullSky()) return true;
    return touchesCone(this.lookup(), this.maxOrder, cone);
  }

  /** Approximate fraction of the covered area lying inside the cone (0 for an empty MOC). */
  coneOverlapFraction(raDeg: number, decDeg: number, radiusDeg: number): number {
    return this.coneOverlapFractionOf(new Cone(raDeg, decDeg, radiusDeg));
  }

  /** {@link coneOverlapFraction} for a cone built once and tested against many MOCs. */
  coneOverlapFractionOf(cone: Cone): number {
    if (this.isEmpty()) return 0;
    if (this.isFullSky()) return cone.skyFraction();
    // Counting cells walks BigInts; the ranges never change, so it is done once.
    this.cellsCache ??= Number(countCells(this.ranges));
    const f = coveredInCone(this.lookup(), cone, this.maxOrder) / this.cellsCache;
    return Math.min(1, Math.max(0, f));
  }

  /** The allocation-free lookup used by cone walks (built once). */
  lookup(): RangeLookup {
    this.lookupCache ??= new RangeLookup(this.ranges);
    return this.lookupCache;
  }

  /** The coverage as the coarsest cells possible: per order (index = order), ascending cell indices. */
  cellsByOrder(): bigint[][] {
    return this.decompose().map((cells) => cells.map((c) => (typeof c === 'bigint' ? c : BigInt(c))));
  }

  /**
   * Split every range into the coarsest aligned cells, per order and ascending (ranges are sorted
   * and each is split left to right, so no sort is needed). Doubles carry the work whenever
   * maxOrder ≤ 24, since bounds are then exact in order-24 units; finer MOCs fall back to BigInt.
   */
  private decompose(): (number | bigint)[][] {
    const byOrder: (number | bigint)[][] = Array.from({ length: MAX_ORDER + 1 }, () => []);
    const r = this.ranges;
    if (this.maxOrder <= SAFE_ORDER) {
      const kMin = SAFE_ORDER - this.maxOrder;
      for (let i = 0; i < r.length; i += 2) {
        let s = Number(r[i] >> 10n);
        const e = Number(r[i + 1] >> 10n);
        while (s < e) {
          let k = kMin;
          while (k < SAFE_ORDER && s % POW4[k + 1] === 0 && s + POW4[k + 1] <= e) k++;
          byOrder[SAFE_ORDER - k].push(s / POW4[k]);
          s += POW4[k];
        }
      }
      return byOrder;
    }
    const sizes = Array.from({ length: MAX_ORDER + 1 }, (_, k) => 1n << BigInt(2 * k));
    const kMin = MAX_ORDER - this.maxOrder;
    for (let i = 0; i < r.length; i += 2) {
      let s = r[i];
      const e = r[i + 1];
      while (s < e) {
        let k = kMin;
        while (k < MAX_ORDER && s % sizes[k + 1] === 0n && s + sizes[k + 1] <= e) k++;
        byOrder[MAX_ORDER - k].push(s / sizes[k]);
        s += sizes[k];
      }
    }
    return byOrder;
  }

  /** Normalised MOC 2.0 ASCII: coarsest cells, orders and cells ascending, runs as a-b, then "maxOrder/" if finer than any cell written. */
  toAscii(): string {
    const parts: string[] = [];
    let highest = -1;
    this.decompose().forEach((cells, order) => {
      if (cells.length === 0) return;
      highest = order;
      const tokens: string[] = [];
      for (let i = 0; i < cells.length; ) {
        let j = i;
        // Cells of one order share a type (number below order 25, bigint above), so += 1 matches it.
        while (j + 1 < cells.length && cells[j + 1] === (typeof cells[j] === 'bigint' ? (cells[j] as bigint) + 1n : (cells[j] as number) + 1)) j++;
        tokens.push(j === i ? String(cells[i]) : `${cells[i]}-${cells[j]}`);
        i = j + 1;
      }
      parts.push(`${order}/${tokens.join(' ')}`);
    });
    if (this.maxOrder > highest) parts.push(`${this.maxOrder}/`);
    return parts.join(' ');
  }

  /** JSON serialisation {"order": [cells]}; cells beyond 2^53 are written as strings. */
  toJson(): Record<string, (number | string)[]> {
    const out: Record<string, (number | string)[]> = {};
    let highest = -1;
    this.cellsByOrder().forEach((cells, order) => {
      if (cells.length === 0) return;
      highest = order;
      out[String(order)] = cells.map((c) => (c <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(c) : String(c)));
    });
    if (this.maxOrder > highest) out[String(this.maxOrder)] = [];
    return out;
  }

  /** The ASCII form, so a MOC prints readably. */
  toString(): string {
    return this.toAscii();
  }
}

// ---------------------------------------------------------------------------------------------
// ASCII parsing

const C0 = 48;
const C9 = 57;
const SLASH = 47;
const DASH = 45;

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function describe(ch: string): string {
  return ch === '"' ? "'\"'" : `"${ch}"`;
}

/**
 * Parse a MOC 2.0 ASCII string ("3/3 10 4/16-18 22 29/"). Throws MocSyntaxError naming the
 * problem and its character offset, MocTooLargeError past `limits`. The empty string is the
 * empty MOC of maxOrder 0.
 */
export function parseMocAscii(text: string, limits?: MocLimits): SMoc {
  if (typeof text !== 'string') throw new MocSyntaxError(`a MOC must be a string (got ${typeof text})`, 0);
  const n = text.length;
  // Checked before reading anything, so an oversized MOC costs nothing.
  if (limits && n > limits.maxChars) {
    throw new MocTooLargeError(`MOC has ${n} characters; at most ${limits.maxChars} are accepted`, limits.maxChars);
  }
  const maxCells = limits?.maxCells ?? Infinity;
  let cellTokens = 0;
  // Per order: ascending [start, end) pairs in that order's own cell units. Orders ≤ 24 stay in
  // doubles (exact there); finer orders use BigInt.
  const small: number[][] = Array.from({ length: SAFE_ORDER + 1 }, () => []);
  const big: bigint[][] = Array.from({ length: MAX_ORDER - SAFE_ORDER }, () => []);
  let order = -1;
  let maxOrder = 0;
  // End (exclusive) of the last cell seen at each order, to enforce ascending cells per order.
  const lastSmall: number[] = new Array<number>(SAFE_ORDER + 1).fill(0);
  const lastBig: bigint[] = new Array<bigint>(MAX_ORDER - SAFE_ORDER).fill(0n);
  let afterSlash = false;
  let i = 0;

  const fail = (msg: string, pos: number): never => {
    throw new MocSyntaxError(msg, pos);
  };
  // Reads the digits at i; returns the value as a double (exact when < 2^53) and its text.
  const readNumber = (): { value: number; text: string; start: number } => {
    const start = i;
    let v = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < C0 || c > C9) break;
      v = v * 10 + (c - C0);
      i++;
    }
    const digits = text.slice(start, i);
    if (digits.length > 24) fail(`number at offset ${start} has too many digits (${digits.length})`, start);
    return { value: v, text: digits, start };
  };
  const checkEnd = (): void => {
    if (i >= n) return;
    const c = text.charCodeAt(i);
    if (isSpace(c)) return;
    const ch = text[i];
    if (ch === ',') fail(`comma at offset ${i}: MOC 2.0 ASCII separates cells with spaces (MOC 1.0 commas are not accepted)`, i);
    if (ch === '+') fail(`"+" at offset ${i}: length ranges ("a+n") are not MOC 2.0; write a-b`, i);
    fail(`unexpected character ${describe(ch)} at offset ${i}`, i);
  };

  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      afterSlash = false;
      i++;
      continue;
    }
    const tokenStart = i;
    if (c === DASH) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) >= C0 && text.charCodeAt(j) <= C9) j++;
      if (j > i + 1 && text[j] === '/') fail(`negative order at offset ${i}`, i);
      fail(j > i + 1 ? `negative cell at offset ${i}: cells are non-negative integers` : `unexpected "-" at offset ${i}`, i);
    }
    if (c < C0 || c > C9) {
      const ch = text[i];
      if ((ch === 's' || ch === 't') && i + 1 < n && text.charCodeAt(i + 1) >= C0 && text.charCodeAt(i + 1) <= C9) {
        fail(
          ch === 's'
            ? `"s" prefix at offset ${i}: space-time MOC syntax is not accepted here; write a plain space MOC without prefix`
            : `"t" prefix at offset ${i}: this is a time MOC, not a space MOC`,
          i,
        );
      }
      if (ch === ',') fail(`comma at offset ${i}: MOC 2.0 ASCII separates cells with spaces (MOC 1.0 commas are not accepted)`, i);
      if (ch === '/') fail(`"/" at offset ${i} has no order before it`, i);
      fail(`unexpected character ${describe(ch)} at offset ${i}`, i);
    }
    const first = readNumber();
    if (i < n && text.charCodeAt(i) === SLASH) {
      // An order token: "o/".
      if (afterSlash) fail(`order ${first.text} at offset ${tokenStart} must be separated from the previous order by a space`, tokenStart);
      const o = first.text.length > 2 ? Infinity : first.value;
      if (o > MAX_ORDER) fail(`order ${first.text} at offset ${tokenStart} is outside 0-29`, tokenStart);
      order = o;
      if (o > maxOrder) maxOrder = o;
      i++;
      afterSlash = true;
      continue;
    }
    afterSlash = false;
    let second: { value: number; text: string; start: number } | undefined;
    if (i < n && text.charCodeAt(i) === DASH) {
      i++;
      const c2 = i < n ? text.charCodeAt(i) : -1;
      if (c2 < C0 || c2 > C9) fail(`range at offset ${tokenStart} has no end after "-"`, tokenStart);
      second = readNumber();
    }
    checkEnd();
    if (++cellTokens > maxCells) throw new MocTooLargeError(`MOC has more than ${maxCells} cells or ranges (the cap is passed at offset ${tokenStart})`, tokenStart);
    if (order < 0) fail(`cell ${first.text} at offset ${tokenStart} has no order: a MOC starts with "order/" (e.g. "3/${first.text}")`, tokenStart);
    const maxCell = cellCount(order) - 1;
    if (order <= SAFE_ORDER) {
      const a = first.text.length > 16 ? Infinity : first.value;
      if (a > maxCell) fail(`cell ${first.text} at offset ${first.start} is outside order ${order} (0-${maxCell})`, first.start);
      let b = a;
      if (second) {
        b = second.text.length > 16 ? Infinity : second.value;
        if (b < a) fail(`range ${first.text}-${second.text} at offset ${tokenStart} is reversed`, tokenStart);
        if (b > maxCell) fail(`cell ${second.text} at offset ${second.start} is outside order ${order} (0-${maxCell})`, second.start);
      }
      if (a < lastSmall[order] || (a === 0 && small[order].length > 0)) fail(`cells of order ${order} are not in ascending order at offset ${tokenStart}`, tokenStart);
      const list = small[order];
      if (list.length > 0 && list[list.length - 1] === a) list[list.length - 1] = b + 1;
      else list.push(a, b + 1);
      lastSmall[order] = b + 1;
    } else {
      const maxBig = BigInt(12) * (1n << BigInt(2 * order)) - 1n;
      const a = BigInt(first.text);
      if (a > maxBig) fail(`cell ${first.text} at offset ${first.start} is outside order ${order} (0-${maxBig})`, first.start);
      let b = a;
      if (second) {
        b = BigInt(second.text);
        if (b < a) fail(`range ${first.text}-${second.text} at offset ${tokenStart} is reversed`, tokenStart);
        if (b > maxBig) fail(`cell ${second.text} at offset ${second.start} is outside order ${order} (0-${maxBig})`, second.start);
      }
      const bigList = big[order - SAFE_ORDER - 1];
      if (a < lastBig[order - SAFE_ORDER - 1] || (a === 0n && bigList.length > 0)) fail(`cells of order ${order} are not in ascending order at offset ${tokenStart}`, tokenStart);
      bigList.push(a, b + 1n);
      lastBig[order - SAFE_ORDER - 1] = b + 1n;
    }
  }

  const sets: Ranges[] = [];
  for (let o = 0; o <= SAFE_ORDER; o++) {
    const list = small[o];
    if (list.length === 0) continue;
    const shift = BigInt(2 * (MAX_ORDER - o));
    const out = new BigInt64Array(list.length);
    for (let k = 0; k < list.length; k++) out[k] = BigInt(list[k]) << shift;
    sets.push(out);
  }
  for (let o = SAFE_ORDER + 1; o <= MAX_ORDER; o++) {
    const list = big[o - SAFE_ORDER - 1];
    if (list.length === 0) continue;
    const shift = BigInt(2 * (MAX_ORDER - o));
    const b = new RangeBuilder();
    for (let k = 0; k < list.length; k += 2) b.push(list[k] << shift, list[k + 1] << shift);
    sets.push(b.finish());
  }
  return makeMoc(unionAll(sets), maxOrder);
}

/** Parse the JSON serialisation {"order": [cell, ...], ...} (an object, or its JSON text). */
export function parseMocJson(input: unknown): SMoc {
  let obj = input;
  if (typeof input === 'string') {
    try {
      obj = JSON.parse(input);
    } catch (err) {
      throw new MocJsonError(`not JSON: ${(err as Error).message}`, '');
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new MocJsonError('a JSON MOC must be an object {"order": [cells]}', '');
  let maxOrder = 0;
  const sets: SMoc[] = [];
  for (const [key, cells] of Object.entries(obj as Record<string, unknown>)) {
    const path = `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!/^(0|[1-9][0-9]?)$/.test(key) || Number(key) > MAX_ORDER) throw new MocJsonError(`key "${key}" is not an order 0-29`, path);
    const order = Number(key);
    if (!Array.isArray(cells)) throw new MocJsonError(`cells of order ${order} must be an array`, path);
    const max = BigInt(cellCount(order));
    const list: bigint[] = [];
    cells.forEach((c: unknown, k: number) => {
      let b: bigint | undefined;
      if (typeof c === 'number' && Number.isSafeInteger(c)) b = BigInt(c);
      else if (typeof c === 'bigint') b = c;
      else if (typeof c === 'string' && /^[0-9]{1,24}$/.test(c)) b = BigInt(c);
      if (b === undefined || b < 0n || b >= max) {
        throw new MocJsonError(`cell ${JSON.stringify(typeof c === 'bigint' ? String(c) : c)} is outside order ${order} (0-${max - 1n})`, `${path}/${k}`);
      }
      list.push(b);
    });
    maxOrder = Math.max(maxOrder, order);
    sets.push(SMoc.fromCells(order, list));
  }
  return makeMoc(unionAll(sets.map((s) => s.ranges)), maxOrder);
}

