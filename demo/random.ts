/** A small seeded pseudo-random generator (mulberry32): the demo's catalogues are the same on every machine. */

/** A generator of uniform numbers in [0, 1) from a 32-bit seed. */
export type Random = () => number;

/** mulberry32 from `seed`: fast, 32-bit state, good enough for synthetic sky positions. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
