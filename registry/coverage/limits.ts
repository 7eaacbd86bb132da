/**
 * Caps on sky coverage given as MOC text, and the resolution coverage is indexed at. A MOC's
 * cost (parse, normal form, index, cone walks) grows with its cells and its order, so a site or a
 * caller could otherwise spend seconds of the broker's event loop with one string.
 */

/** Most characters of MOC ASCII accepted in one MOC (a document's coverage or a region argument). */
export const MOC_MAX_CHARS = 262_144;

/** Most cell tokens (a cell "5" or a range "5-9" counts once) accepted in one MOC. */
export const MOC_MAX_CELLS = 20_000;

/**
 * Coverage finer than this order is widened to it (a superset, cells of 0.86′) for the sky index
 * and the planner; the stored coverage keeps the original. Cone walks then stop at order 12.
 */
export const INDEX_ORDER = 12;

/** Caps applied while parsing one MOC. */
export interface MocLimits {
  maxChars: number;
  maxCells: number;
}

/** The caps every untrusted MOC is parsed with. */
export const MOC_LIMITS: MocLimits = Object.freeze({ maxChars: MOC_MAX_CHARS, maxCells: MOC_MAX_CELLS });
