/**
 * An immutable map whose next generation costs about the size of its change, not of the map: a
 * large base shared by every generation, under a small top of the entries changed since (a
 * deleted entry is kept in the top as undefined). When the top outgrows about √(size × change)
 * entries, the next generation folds it into a new base, so over many small changes the copying
 * per change stays near √(size × change) instead of size.
 */
export class LayeredMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly top: ReadonlyMap<K, V | undefined>,
    /** Number of entries with a value. */
    readonly size: number,
  ) {}

  /** A map holding `entries`. */
  static of<K, V>(entries: Map<K, V>): LayeredMap<K, V> {
    return new LayeredMap(entries, new Map(), entries.size);
  }

  /** The value of `key`, or undefined. */
  get(key: K): V | undefined {
    const top = this.top.get(key);
    if (top !== undefined || this.top.has(key)) return top;
    return this.base.get(key);
  }

  /** The next generation: each key of `changes` set to its value (undefined: removed); this one is left as it was. */
  with(changes: ReadonlyMap<K, V | undefined>): LayeredMap<K, V> {
    let size = this.size;
    for (const [key, value] of changes) size += (value === undefined ? 0 : 1) - (this.get(key) === undefined ? 0 : 1);
    const limit = Math.max(64, Math.sqrt(this.size * Math.max(1, changes.size)));
    if (this.top.size + changes.size > limit) {
      const base = new Map(this.base);
      for (const [key, value] of this.top) fold(base, key, value);
      for (const [key, value] of changes) fold(base, key, value);
      return new LayeredMap(base, new Map(), size);
    }
    const top = new Map(this.top);
    for (const [key, value] of changes) top.set(key, value);
    return new LayeredMap(this.base, top, size);
  }

  /** Every value, in no particular order. */
  *values(): IterableIterator<V> {
    for (const [key, value] of this.base) if (!this.top.has(key)) yield value;
    for (const value of this.top.values()) if (value !== undefined) yield value;
  }
}

function fold<K, V>(into: Map<K, V>, key: K, value: V | undefined): void {
  if (value === undefined) into.delete(key);
  else into.set(key, value);
}
