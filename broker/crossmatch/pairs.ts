/** A growable buffer of pairs, emptied into PairBatch objects. */
import type { PairBatch } from './types.js';

/** Accumulates pairs in typed arrays (no object per pair). */
export class PairBuffer {
  length = 0;
  private left = new Uint32Array(1024);
  private right = new Uint32Array(1024);
  private sep = new Float64Array(1024);

  /** Appends one pair. */
  push(left: number, right: number, sepArcsec: number): void {
    if (this.length === this.left.length) this.grow();
    const k = this.length++;
    this.left[k] = left;
    this.right[k] = right;
    this.sep[k] = sepArcsec;
  }

  /** The pairs so far as a batch (copies), and an empty buffer. */
  take(): PairBatch {
    const n = this.length;
    this.length = 0;
    return { left: this.left.slice(0, n), right: this.right.slice(0, n), sepArcsec: this.sep.slice(0, n) };
  }

  private grow(): void {
    const c = this.left.length * 2;
    const l = new Uint32Array(c); l.set(this.left); this.left = l;
    const r = new Uint32Array(c); r.set(this.right); this.right = r;
    const s = new Float64Array(c); s.set(this.sep); this.sep = s;
  }
}
