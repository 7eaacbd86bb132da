/**
 * Building PackedCoverage stores (packed.ts) from MOC texts: the fast reader of packed-parse.ts
 * for the usual text, parseMocAscii for the rest; each coverage's cell count and bounding cap
 * computed once as it is added.
 */
import { MAX_PIXRAD, POW4, centerTable } from './healpix.js';
import { parseMocAscii, type SMoc } from './moc.js';
import { BIG_SHIFT, EMPTY, NARROW_MAX_ORDER, PART, PackedCoverage, UNKNOWN, WHOLE, cellsOf } from './packed.js';
import { storeCap } from './packed-cap.js';
import { PACKED_ORDER, parseMocFast, type RangeSink } from './packed-parse.js';
import { lastPrint, printText } from './packed-print.js';

/** One order-12 cell in order-29 cells (2^34, so products stay exact). */
const CELLS_29 = POW4[29 - PACKED_ORDER];
/** The whole sky in order-12 cells. */
const SKY_12 = 12 * POW4[PACKED_ORDER];
/** Finest order the bounding caps are built from: its cell centres come from a table, with no trigonometry. */
const CAP_ORDER = 7;
const CAP_CELLS = 256;
/** Radians added so that rounding in the centre and distance sums never prunes a true match. */
const PAD = 1e-9;

/** Texts at least this long are worth sharing between builders (a survey's footprint, repeated at many sites). */
const SHARE_MIN_CHARS = 256;
/** Most texts one SharedCoverages keeps. */
const SHARE_MAX_TEXTS = 4096;

/** The growing arrays of a builder, handed on to the next one when it finishes. */
interface BuilderArrays {
  ranges: Uint32Array;
  span: Uint32Array;
  info: Uint8Array;
  numbers: Float64Array;
  prints: Uint32Array;
}

let spare: BuilderArrays | undefined;
/** Largest ranges array kept for the next builder (16 MB). */
const SPARE_MAX_BOUNDS = 4 << 20;

/** One read coverage kept for other builders: its order-12 bounds, kind, maxOrder and numbers (cells, cap). */
interface SharedCoverage {
  ranges: Uint32Array;
  kind: number;
  maxOrder: number;
  numbers: Float64Array;
  /** The print of its text. */
  hi: number;
  lo: number;
}

/** Long MOC texts read by one builder and reused by the others of one build (see PackedCoverageBuilder). */
export class SharedCoverages {
  /** @internal */
  readonly texts = new Map<string, SharedCoverage>();
}

/**
 * Builds a PackedCoverage from MOC texts (or SMocs), one coverage per add. A text seen before in
 * this builder is read once: many replicas of one survey share its coverage. Builders given one
 * SharedCoverages also share the long texts they read (up to 4,096 of them).
 */
export class PackedCoverageBuilder implements RangeSink {
  // Growing arrays of the PackedCoverage being built (each field one type, so every access is monomorphic).
  private ranges: Uint32Array;
  private rangesLength = 0;
  private span: Uint32Array;
  private info: Uint8Array;
  private numbers: Float64Array;
  private prints: Uint32Array;
  private n = 0;
  private readonly seen = new Map<string, number>();
  private readonly cells: number[] = [];

  constructor(private readonly shared?: SharedCoverages) {
    // The arrays a finished builder left, when no other builder holds them: a build of ten
    // thousand sites then allocates each site's arrays once, at their size, and leaves no trail
    // of outgrown buffers fragmenting the allocator.
    const arrays = spare ?? { ranges: new Uint32Array(256), span: new Uint32Array(64), info: new Uint8Array(64), numbers: new Float64Array(160), prints: new Uint32Array(64) };
    spare = undefined;
    this.ranges = arrays.ranges;
    this.span = arrays.span;
    this.info = arrays.info;
    this.numbers = arrays.numbers;
    this.prints = arrays.prints;
  }

  /** Number of coverages added. */
  get count(): number {
    return this.n;
  }

  /** @internal RangeSink for the fast parser, which gives ranges ascending and merged. */
  push(start: number, end: number): void {
    this.reserveRanges(2);
    this.ranges[this.rangesLength++] = start;
    this.ranges[this.rangesLength++] = end;
  }

  /**
   * Add the coverage of MOC ASCII `text` (null: unknown) and return its number. When `previous`
   * was read from the same text (by its print) as coverage `at` of `previous`, that coverage is
   * copied rather than the text read again. Throws what parseMocAscii throws on a malformed text.
   */
  addText(text: string | null, previous?: PackedCoverage, at = -1): number {
    if (text === null) return this.record(this.rangesLength, this.rangesLength, UNKNOWN, 0, 0);
    const known = this.seen.get(text);
    if (known !== undefined) return this.copy(known);
    printText(text);
    const { hi, lo } = lastPrint;
    if (previous !== undefined && at >= 0 && at < previous.count && previous.readFrom(at, hi, lo)) return this.remember(text, this.addFrom(previous, at));
    const share = this.shared !== undefined && text.length >= SHARE_MIN_CHARS ? this.shared.texts : undefined;
    const read = share?.get(text);
    if (read !== undefined) return this.remember(text, this.addShared(read));
    const from = this.rangesLength;
    const maxOrder = parseMocFast(text, this);
    let i: number;
    if (maxOrder < 0) {
      this.rangesLength = from;
      i = this.addMoc(parseMocAscii(text));
    } else i = this.finishOne(from, Math.min(maxOrder, PACKED_ORDER));
    this.prints[2 * i] = hi;
    this.prints[2 * i + 1] = lo;
    return this.remember(text, i);
  }

  /** Add a parsed MOC (null: unknown), widened to order 12, and return its number. */
  addMoc(moc: SMoc | null): number {
    if (moc === null) return this.record(this.rangesLength, this.rangesLength, UNKNOWN, 0, 0);
    const m = moc.degrade(PACKED_ORDER);
    const at = this.rangesLength;
    this.reserveRanges(m.ranges.length);
    for (let k = 0; k < m.ranges.length; k++) this.ranges[this.rangesLength++] = Number(m.ranges[k] >> BIG_SHIFT);
    return this.finishOne(at, m.maxOrder);
  }

  /** The coverages added so far (the builder is spent). */
  finish(): PackedCoverage {
    const done = this.compact();
    // Kept for the next builder unless larger than a site's worth (a one-off huge build lets its arrays go).
    if (this.ranges.length <= SPARE_MAX_BOUNDS) spare = { ranges: this.ranges, span: this.span, info: this.info, numbers: this.numbers, prints: this.prints };
    this.n = this.rangesLength = 0;
    this.ranges = this.span = this.prints = new Uint32Array(0);
    this.info = new Uint8Array(0);
    this.numbers = new Float64Array(0);
    return done;
  }

  /**
   * The store, each coverage's order-12 bounds brought down to its maxOrder (where they all lie:
   * checked, and kept at order 12 otherwise), coarse ones as Uint16. Coverages sharing bounds
   * (one text read once) still share them.
   */
  private compact(): PackedCoverage {
    const n = this.n;
    const r = this.ranges;
    const orders = new Uint8Array(n);
    const span = new Uint32Array(2 * n);
    // Builder bounds of a coverage already placed (by their first index) → the coverage placed there.
    const placed = new Map<number, number>();
    let narrowLength = 0;
    let wideLength = 0;
    for (let i = 0; i < n; i++) {
      const from = this.span[2 * i];
      const to = this.span[2 * i + 1];
      const first = to > from ? placed.get(from) : undefined;
      if (first !== undefined) {
        orders[i] = orders[first];
        continue;
      }
      if (to > from) placed.set(from, i);
      let order = this.info[2 * i + 1];
      const k = POW4[PACKED_ORDER - order];
      for (let p = from; p < to; p++) {
        if (r[p] % k !== 0) {
          order = PACKED_ORDER;
          break;
        }
      }
      orders[i] = order;
      if (order <= NARROW_MAX_ORDER) narrowLength += to - from;
      else wideLength += to - from;
    }
    const narrow = new Uint16Array(narrowLength);
    const wide = new Uint32Array(wideLength);
    let nAt = 0;
    let wAt = 0;
    for (let i = 0; i < n; i++) {
      const from = this.span[2 * i];
      const to = this.span[2 * i + 1];
      const first = to > from ? placed.get(from) : undefined;
      if (first !== undefined && first !== i) {
        span[2 * i] = span[2 * first];
        span[2 * i + 1] = span[2 * first + 1];
        continue;
      }
      const k = POW4[PACKED_ORDER - orders[i]];
      const out = orders[i] <= NARROW_MAX_ORDER ? narrow : wide;
      let at = out === narrow ? nAt : wAt;
      span[2 * i] = at;
      for (let p = from; p < to; p++) out[at++] = r[p] / k;
      span[2 * i + 1] = at;
      if (out === narrow) nAt = at;
      else wAt = at;
    }
    // Of the builder's numbers the store keeps the caps, as float32; it sums cell counts from the bounds.
    const caps = new Float32Array(4 * n);
    const m = this.numbers;
    for (let i = 0; i < n; i++) storeCap(caps, i, m[5 * i + 1], m[5 * i + 2], m[5 * i + 3], m[5 * i + 4]);
    return new PackedCoverage(wide, span, this.info.slice(0, 2 * n), caps, this.prints.slice(0, 2 * n), narrow, orders);
  }

  private reserveRanges(extra: number): void {
    if (this.rangesLength + extra <= this.ranges.length) return;
    const grown = new Uint32Array(Math.max(2 * this.ranges.length, this.rangesLength + extra));
    grown.set(this.ranges.subarray(0, this.rangesLength));
    this.ranges = grown;
  }

  private remember(text: string, i: number): number {
    this.seen.set(text, i);
    const share = this.shared !== undefined && text.length >= SHARE_MIN_CHARS ? this.shared.texts : undefined;
    if (share !== undefined && share.size < SHARE_MAX_TEXTS && !share.has(text)) {
      share.set(text, {
        ranges: this.ranges.slice(this.span[2 * i], this.span[2 * i + 1]),
        kind: this.info[2 * i],
        maxOrder: this.info[2 * i + 1],
        numbers: this.numbers.slice(5 * i, 5 * i + 5),
        hi: this.prints[2 * i],
        lo: this.prints[2 * i + 1],
      });
    }
    return i;
  }

  /** A coverage read by another builder: its bounds copied, its numbers kept. */
  private addShared(read: SharedCoverage): number {
    const at = this.rangesLength;
    this.reserveRanges(read.ranges.length);
    this.ranges.set(read.ranges, at);
    this.rangesLength += read.ranges.length;
    const i = this.record(at, this.rangesLength, read.kind, read.maxOrder, read.numbers[0]);
    this.numbers.set(read.numbers, 5 * i);
    this.prints[2 * i] = read.hi;
    this.prints[2 * i + 1] = read.lo;
    return i;
  }

  /** Coverage `j` of another store: its bounds copied (back at order 12), its numbers and print kept. */
  private addFrom(store: PackedCoverage, j: number): number {
    const at = this.rangesLength;
    this.reserveRanges(store.span[2 * j + 1] - store.span[2 * j]);
    this.rangesLength = store.copyBounds12(j, this.ranges, at);
    const i = this.record(at, this.rangesLength, store.info[2 * j], store.info[2 * j + 1], store.cellCount(j));
    // The float32 cap comes back exactly, and storing it again leaves it as it is.
    for (let k = 0; k < 4; k++) this.numbers[5 * i + 1 + k] = store.caps[4 * j + k];
    this.prints[2 * i] = store.prints[2 * j];
    this.prints[2 * i + 1] = store.prints[2 * j + 1];
    return i;
  }

  /** Another coverage sharing the bounds of coverage `i`. */
  private copy(i: number): number {
    const at = this.record(this.span[2 * i], this.span[2 * i + 1], this.info[2 * i], this.info[2 * i + 1], this.numbers[5 * i]);
    this.numbers.copyWithin(5 * at + 1, 5 * i + 1, 5 * i + 5);
    this.prints[2 * at] = this.prints[2 * i];
    this.prints[2 * at + 1] = this.prints[2 * i + 1];
    return at;
  }

  /** Record the coverage whose bounds were just written from `at`: its kind, cell count and cap. */
  private finishOne(at: number, maxOrder: number): number {
    const r = this.ranges;
    const to = this.rangesLength;
    let cells12 = 0;
    for (let k = at; k < to; k += 2) cells12 += r[k + 1] - r[k];
    const kind = to === at ? EMPTY : cells12 === SKY_12 ? WHOLE : PART;
    const i = this.record(at, to, kind, maxOrder, cells12 * CELLS_29);
    if (kind === PART) this.cap(i, maxOrder);
    return i;
  }

  private record(from: number, to: number, kind: number, maxOrder: number, cells: number): number {
    const i = this.n;
    if (2 * i + 2 > this.span.length) {
      const span = new Uint32Array(Math.max(64, 2 * this.span.length));
      span.set(this.span);
      this.span = span;
      const info = new Uint8Array(Math.max(64, 2 * this.info.length));
      info.set(this.info);
      this.info = info;
      const numbers = new Float64Array(Math.max(160, 2 * this.numbers.length));
      numbers.set(this.numbers);
      this.numbers = numbers;
      const prints = new Uint32Array(Math.max(64, 2 * this.prints.length));
      prints.set(this.prints);
      this.prints = prints;
    }
    this.span[2 * i] = from;
    this.span[2 * i + 1] = to;
    this.info[2 * i] = kind;
    this.info[2 * i + 1] = maxOrder;
    const n = this.numbers;
    n[5 * i] = cells;
    n[5 * i + 1] = n[5 * i + 2] = n[5 * i + 3] = n[5 * i + 4] = NaN;
    this.prints[2 * i] = this.prints[2 * i + 1] = 0;
    this.n = i + 1;
    return i;
  }

  /**
   * The bounding cap of coverage i, from its cells at order 7 at most (their centres come from a
   * table): the unit centre of those cells' centres, and a margin such that every cell centre at
   * maxOrder lies within margin − MAX_PIXRAD[maxOrder] of it (a coarser cell holds its finer
   * centres within its own radius). The inclusive cone test needs a covered cell's centre within
   * radius + MAX_PIXRAD[maxOrder] of the cone's centre, so a cone farther than radius + margin
   * touches nothing (PackedCoverage.mayTouch).
   */
  private cap(i: number, maxOrder: number): void {
    const from = this.span[2 * i];
    const to = this.span[2 * i + 1];
    let order = Math.min(maxOrder, CAP_ORDER);
    while (!cellsOf(this.ranges, from, to, PACKED_ORDER, order, order === 0 ? 12 : CAP_CELLS, this.cells)) order--;
    const t = centerTable(order);
    let x = 0;
    let y = 0;
    let z = 0;
    for (const c of this.cells) {
      x += t[3 * c];
      y += t[3 * c + 1];
      z += t[3 * c + 2];
    }
    // Square roots, not Math.hypot: this runs for every coverage of a build, and hypot is slow.
    const norm = Math.sqrt(x * x + y * y + z * z);
    if (norm < 1e-6) return;
    x /= norm;
    y /= norm;
    z /= norm;
    let widest2 = 0;
    for (const c of this.cells) {
      const dx = t[3 * c] - x;
      const dy = t[3 * c + 1] - y;
      const dz = t[3 * c + 2] - z;
      const d2 = dx * dx + dy * dy + dz * dz;
      if (d2 > widest2) widest2 = d2;
    }
    const widest = Math.sqrt(widest2);
    const radius = 2 * Math.asin(Math.min(1, widest / 2));
    const inCell = order < maxOrder ? MAX_PIXRAD[order] : 0;
    const n = this.numbers;
    n[5 * i + 1] = x;
    n[5 * i + 2] = y;
    n[5 * i + 3] = z;
    n[5 * i + 4] = radius + inCell + MAX_PIXRAD[maxOrder] + PAD;
  }
}
