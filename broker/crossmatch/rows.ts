/** Columnar, growable storage of one side's rows (positions, ordinal, optional id). */
import { invalidArgument } from '../../registry/model/errors.js';
import { normalizeRa } from './sphere.js';
import type { RowIds, SkyBatch } from './types.js';

/** Which kind of id a side carries (fixed by its first batch). */
export type IdKind = 'none' | 'bigint' | 'double';

/** Bytes a held row costs while matching (columns here, the zone table built from them and its scratch columns), for the memory budget. */
export const BYTES_PER_ROW = 160;

/** The largest ordinal a pair can name (Uint32Array). */
export const MAX_ORDINAL = 0xffff_ffff;

/** Rows of one side, in arrival order; only rows with a finite position are kept. */
export class RowSet {
  length = 0;
  ra: Float64Array;
  dec: Float64Array;
  ordinal: Uint32Array;
  idBig: BigInt64Array | null = null;
  idNum: Float64Array | null = null;

  constructor(readonly idKind: IdKind, capacity = 1024) {
    const c = Math.max(16, capacity);
    this.ra = new Float64Array(c);
    this.dec = new Float64Array(c);
    this.ordinal = new Uint32Array(c);
    if (idKind === 'bigint') this.idBig = new BigInt64Array(c);
    if (idKind === 'double') this.idNum = new Float64Array(c);
  }

  /** Makes room for `extra` more rows. */
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.ra.length) return;
    let c = this.ra.length;
    while (c < need) c *= 2;
    this.ra = grow(this.ra, new Float64Array(c), this.length);
    this.dec = grow(this.dec, new Float64Array(c), this.length);
    this.ordinal = grow(this.ordinal, new Uint32Array(c), this.length);
    if (this.idBig) this.idBig = grow(this.idBig, new BigInt64Array(c), this.length);
    if (this.idNum) this.idNum = grow(this.idNum, new Float64Array(c), this.length);
  }

  /** Appends one row (ra already folded into [0, 360)). */
  push(ra: number, dec: number, ordinal: number, idBig: bigint, idNum: number): void {
    if (this.length === this.ra.length) this.reserve(1);
    const k = this.length++;
    this.ra[k] = ra;
    this.dec[k] = dec;
    this.ordinal[k] = ordinal;
    if (this.idBig) this.idBig[k] = idBig;
    if (this.idNum) this.idNum[k] = idNum;
  }

  /** Appends the rows of a checked batch with a finite position (the in-memory fast path of `forEachRow`). */
  appendBatch(side: 'left' | 'right', batch: SkyBatch, firstOrdinal: number): number {
    const { ra, dec, id } = batch;
    const n = ra.length;
    this.reserve(n);
    const big = id instanceof BigInt64Array ? id : null;
    const num = id instanceof Float64Array ? id : null;
    const outRa = this.ra, outDec = this.dec, outOrd = this.ordinal, outBig = this.idBig, outNum = this.idNum;
    let k = this.length;
    for (let i = 0; i < n; i++) {
      const a = ra[i];
      const d = dec[i];
      if (!(a - a === 0) || !(d - d === 0)) continue; // NaN or ±Infinity: a NULL position never matches
      if (d < -90 || d > 90) {
        this.length = k;
        throw badDec(side, firstOrdinal + i, d);
      }
      outRa[k] = a >= 0 && a < 360 ? a : normalizeRa(a);
      outDec[k] = d;
      outOrd[k] = firstOrdinal + i;
      if (outBig && big) outBig[k] = big[i];
      if (outNum && num) outNum[k] = num[i];
      k++;
    }
    this.length = k;
    return n;
  }

  /** -1, 0 or 1 as row a's id (or ordinal) is smaller, equal or larger than row b's: the BEST tie-break. */
  compareIds(a: number, b: number): number {
    if (this.idBig) return this.idBig[a] < this.idBig[b] ? -1 : this.idBig[a] > this.idBig[b] ? 1 : 0;
    if (this.idNum) return this.idNum[a] < this.idNum[b] ? -1 : this.idNum[a] > this.idNum[b] ? 1 : 0;
    return this.ordinal[a] - this.ordinal[b];
  }
}

function grow<T extends { set(from: T): void; subarray(begin: number, end: number): T }>(from: T, to: T, n: number): T {
  to.set(from.subarray(0, n));
  return to;
}

/** The id kind of a batch's id column. */
export function idKindOf(ids: RowIds | undefined): IdKind {
  if (ids === undefined) return 'none';
  return ids instanceof BigInt64Array ? 'bigint' : 'double';
}

/** Checks one batch of side `side`: column types and lengths, the id kind, the ordinal range. */
export function checkBatch(side: 'left' | 'right', batch: SkyBatch, kind: IdKind, firstOrdinal: number): void {
  const { ra, dec, id } = batch;
  if (!(ra instanceof Float64Array) || !(dec instanceof Float64Array)) throw invalidArgument(`${side}.ra`, 'and dec must be Float64Arrays', 'type');
  if (ra.length !== dec.length) throw invalidArgument(`${side}.dec`, `has ${dec.length} rows where ra has ${ra.length}`, 'length');
  if (idKindOf(id) !== kind) throw invalidArgument(`${side}.id`, `must be ${kind === 'none' ? 'absent' : kind === 'bigint' ? 'a BigInt64Array' : 'a Float64Array'} in every batch, as in the first`, 'type');
  if (id !== undefined && id.length !== ra.length) throw invalidArgument(`${side}.id`, `has ${id.length} rows where ra has ${ra.length}`, 'length');
  if (firstOrdinal + ra.length - 1 > MAX_ORDINAL) throw invalidArgument(side, `has more than ${MAX_ORDINAL + 1} rows`, 'maxRows');
}

/** INVALID_ARGUMENT for a declination outside [-90, 90]. */
export function badDec(side: 'left' | 'right', ordinal: number, dec: number): Error {
  return invalidArgument(`${side}.dec[${ordinal}]`, `must be within [-90, 90] (got ${dec})`, 'range');
}

/**
 * Calls `each` for every row of a checked batch with a finite position, RA folded into [0, 360).
 * Returns the batch's row count.
 */
export function forEachRow(
  side: 'left' | 'right',
  batch: SkyBatch,
  firstOrdinal: number,
  each: (ra: number, dec: number, ordinal: number, idBig: bigint, idNum: number) => void,
): number {
  const { ra, dec, id } = batch;
  const big = id instanceof BigInt64Array ? id : null;
  const num = id instanceof Float64Array ? id : null;
  for (let i = 0; i < ra.length; i++) {
    const a = ra[i];
    const d = dec[i];
    if (!Number.isFinite(a) || !Number.isFinite(d)) continue;
    if (d < -90 || d > 90) throw badDec(side, firstOrdinal + i, d);
    each(normalizeRa(a), d, firstOrdinal + i, big ? big[i] : 0n, num ? num[i] : 0);
  }
  return ra.length;
}
