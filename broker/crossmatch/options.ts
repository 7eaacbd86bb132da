/** Checks the matcher's options once, before any row is read. */
import { tmpdir } from 'node:os';
import { invalidArgument } from '../../registry/model/errors.js';
import type { CrossmatchOptions, MatchMode } from './types.js';

/** Options after checking, with defaults applied. */
export interface CheckedOptions {
  radiusArcsec: number;
  mode: MatchMode;
  budgetBytes: number;
  spillDir: string;
  signal: AbortSignal | undefined;
  batchPairs: number;
  onSpill: ((dir: string) => void) | undefined;
}

/** Largest radius the matcher accepts, in arcseconds (issue 11). */
export const MAX_RADIUS_ARCSEC = 60;

/** Validates `options`; INVALID_ARGUMENT naming the field otherwise. */
export function checkOptions(options: CrossmatchOptions): CheckedOptions {
  const r: unknown = options.radiusArcsec;
  if (typeof r !== 'number' || !Number.isFinite(r)) throw invalidArgument('radiusArcsec', 'must be a number', 'type');
  if (r <= 0) throw invalidArgument('radiusArcsec', `must be > 0 (got ${r})`, 'exclusiveMinimum');
  if (r > MAX_RADIUS_ARCSEC) throw invalidArgument('radiusArcsec', `must be ≤ ${MAX_RADIUS_ARCSEC} (got ${r})`, 'maximum');
  const mode: unknown = options.mode ?? 'ALL';
  if (mode !== 'ALL' && mode !== 'BEST') throw invalidArgument('mode', `must be ALL or BEST (got ${String(mode)})`, 'enum');
  const mb: unknown = options.memoryMb ?? 512;
  if (typeof mb !== 'number' || !Number.isFinite(mb) || mb <= 0) throw invalidArgument('memoryMb', 'must be a number > 0', 'exclusiveMinimum');
  const bp: unknown = options.batchPairs ?? 65_536;
  if (typeof bp !== 'number' || !Number.isInteger(bp) || bp < 1) throw invalidArgument('batchPairs', 'must be an integer ≥ 1', 'minimum');
  return {
    radiusArcsec: r,
    mode,
    budgetBytes: mb * 1024 * 1024,
    spillDir: options.spillDir ?? tmpdir(),
    signal: options.signal,
    batchPairs: bp,
    onSpill: options.onSpill,
  };
}
