// The listener set behind every adapter's watch(): "something may have changed" signals from any
// source are coalesced into one call per listener per macrotask, so a burst of writes wakes each
// waiter once. A signal says whether the change may bring new work (a job to claim, or a due time
// that moved); listeners that asked only for those (a worker's claim loop) skip the others: a
// completion or a progress note never gives a worker anything to claim.
export class ChangeListeners {
  readonly #listeners = new Map<() => void, boolean>(); // listener → wants only new work
  #pending: "none" | "quiet" | "work" = "none";

  get size(): number {
    return this.#listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  add(listener: () => void, newWorkOnly = false): () => void {
    this.#listeners.set(listener, newWorkOnly);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Calls every listener once, soon; those that want only new work, only if `newWork`. */
  announce(newWork = true): void {
    if (this.#listeners.size === 0) return;
    const before = this.#pending;
    if (before === "work" || (before === "quiet" && !newWork)) return;
    this.#pending = newWork ? "work" : "quiet";
    if (before !== "none") return; // already scheduled: it will see the upgrade
    setImmediate(() => {
      const work = this.#pending === "work";
      this.#pending = "none";
      for (const [listener, newWorkOnly] of [...this.#listeners]) {
        if (work || !newWorkOnly) listener();
      }
    });
  }

  clear(): void {
    this.#listeners.clear();
  }
}
