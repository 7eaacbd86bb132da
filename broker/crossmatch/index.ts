/** The broker's positional matcher (issue 11, point 3): streaming, zone-partitioned, bounded memory. */
export { crossmatch } from './matcher.js';
export { MAX_RADIUS_ARCSEC } from './options.js';
export { separationArcsec } from './sphere.js';
export type { CrossmatchOptions, MatchMode, PairBatch, RowIds, SkyBatch, SkySource } from './types.js';
