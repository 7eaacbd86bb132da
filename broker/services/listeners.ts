/** Listeners of one kind of change: added with an unsubscribe function, called in turn, a throwing one reported and skipped. */
export class Listeners<T> {
  private readonly set = new Set<(value: T) => void>();

  constructor(private readonly onError: (err: unknown) => void) {}

  /** Call `listener` on every change from now on; returns the unsubscribe function. */
  add(listener: (value: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  /** Tell every listener; one that throws does not keep the others from hearing it. */
  emit(value: T): void {
    for (const l of this.set) {
      try {
        l(value);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
