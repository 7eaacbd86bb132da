/** In-place sort of a Float64Array segment carrying a Uint32Array payload along (no comparator calls, no objects). */

/** Sorts keys[lo, hi) ascending and applies the same permutation to payload[lo, hi). */
export function sortWithPayload(keys: Float64Array, payload: Uint32Array, lo: number, hi: number): void {
  // Quicksort with a median-of-three pivot; small ranges by insertion sort. Recurse on the smaller
  // half and loop on the larger, so the stack stays O(log n).
  while (hi - lo > 24) {
    const mid = (lo + hi) >>> 1;
    const a = keys[lo];
    const b = keys[mid];
    const c = keys[hi - 1];
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo;
    let j = hi - 1;
    while (i <= j) {
      while (keys[i] < pivot) i++;
      while (keys[j] > pivot) j--;
      if (i <= j) {
        const k = keys[i]; keys[i] = keys[j]; keys[j] = k;
        const p = payload[i]; payload[i] = payload[j]; payload[j] = p;
        i++;
        j--;
      }
    }
    if (j + 1 - lo < hi - i) {
      sortWithPayload(keys, payload, lo, j + 1);
      lo = i;
    } else {
      sortWithPayload(keys, payload, i, hi);
      hi = j + 1;
    }
  }
  for (let i = lo + 1; i < hi; i++) {
    const k = keys[i];
    const p = payload[i];
    let j = i - 1;
    while (j >= lo && keys[j] > k) {
      keys[j + 1] = keys[j];
      payload[j + 1] = payload[j];
      j--;
    }
    keys[j + 1] = k;
    payload[j + 1] = p;
  }
}
