// The listener set behind every adapter's watch(): "something may have changed" signals from any
// source are coalesced into one call per listener per macrotask, so a burst of writes wakes each
// waiter once.
export class ChangeListeners {
  readonly #listeners = new Set<() => void>();
  #pending = false;

  get size(): number {
    return this.#listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Calls every listener once, soon. */
  announce(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    setImmediate(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) listener();
    });
  }

  clear(): void {
    this.#listeners.clear();
  }
}
