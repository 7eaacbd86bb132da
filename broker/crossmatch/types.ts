/**
 * Types of the positional matcher. Positions are ICRS degrees; rows travel as columns in typed
 * arrays, never as one object per row.
 */

/** How pairs are chosen: every pair within the radius, or the nearest right row per left row. */
export type MatchMode = 'ALL' | 'BEST';

/** Row identifiers of one side: 64-bit integers (source_id, objID) or doubles. */
export type RowIds = BigInt64Array | Float64Array;

/**
 * One batch of rows of one side. `ra` and `dec` have the same length; `id`, when given, too.
 * A row's ordinal is its position in the whole stream of that side (0-based across batches);
 * pairs name rows by ordinal. `id` only decides BEST ties (the smaller id wins; without ids the
 * smaller ordinal). Rows with a non-finite ra or dec (a NULL position) never match.
 */
export interface SkyBatch {
  ra: Float64Array;
  dec: Float64Array;
  id?: RowIds;
}

/** A source of batches: an array, a sync or an async iterable (a stream of pages). */
export type SkySource = Iterable<SkyBatch> | AsyncIterable<SkyBatch>;

/**
 * One batch of matched pairs: `left[k]` and `right[k]` are row ordinals of each side,
 * `sepArcsec[k]` their great-circle separation. Batches come in no particular order; in BEST mode
 * each left ordinal appears at most once over all batches.
 */
export interface PairBatch {
  left: Uint32Array;
  right: Uint32Array;
  sepArcsec: Float64Array;
}

/** Options of `crossmatch`. */
export interface CrossmatchOptions {
  /** Match radius in arcseconds: > 0 and ≤ 60. */
  radiusArcsec: number;
  /** ALL (default) or BEST. */
  mode?: MatchMode;
  /** Memory budget for rows held at once, in MiB (default 512); above it inputs spill to files. */
  memoryMb?: number;
  /** Directory under which spill files go (the broker's data directory); default the OS temp dir. */
  spillDir?: string;
  /** Stops the match promptly; the generator then throws `signal.reason`. */
  signal?: AbortSignal;
  /** Pairs per emitted batch, at least (default 65,536). */
  batchPairs?: number;
  /** Called once when the inputs spill (with the directory used), for logs and progress. */
  onSpill?: (dir: string) => void;
}
