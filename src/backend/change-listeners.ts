// The listener set behind every adapter's watch(): "something may have changed" signals from any
// source are coalesced into one call per listener per macrotask, so a burst of writes wakes each
// waiter once. A signal says whether the change may bring new work (a job to claim, or a due time
// that moved); listeners that asked only for those (a worker's claim loop) skip the others: a
// completion or a progress note never gives a worker anything to claim.

/**
 * Operations that bring nothing to claim, the same names on every backend: their cross-process
 * messages say " quiet" (the PostgreSQL queries, the Redis scripts), and so do local announces.
 */
export const QUIET_OPERATIONS: ReadonlySet<string> = new Set(["claim", "complete", "progress", "log", "acknowledge-cancel", "cancel"]);

/**
 * Reads a cross-process change message, "<origin>" or "<origin> quiet": undefined for one of
 * `ownOrigin`'s own (already announced where it was made), else whether it may bring new work.
 * An older process sends "", which may be anything.
 */
export function readChangeMessage(message: string, ownOrigin: string): { readonly newWork: boolean } | undefined {
  const [from = "", kind] = message.split(" ");
  if (ownOrigin !== "" && from === ownOrigin) return undefined;
  return { newWork: kind !== "quiet" };
}

export class ChangeListeners {
  readonly #listeners = new Map<() => void, boolean>(); // listener → wants only new work
  #hearingQuiet = 0; // listeners that want every change: without any, a quiet change calls nobody
  #pending: "none" | "quiet" | "work" = "none";

  get size(): number {
    return this.#listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  add(listener: () => void, newWorkOnly = false): () => void {
    this.#remove(listener);
    this.#listeners.set(listener, newWorkOnly);
    if (!newWorkOnly) this.#hearingQuiet++;
    return () => this.#remove(listener);
  }

  #remove(listener: () => void): void {
    const newWorkOnly = this.#listeners.get(listener);
    if (newWorkOnly === undefined) return;
    this.#listeners.delete(listener);
    if (!newWorkOnly) this.#hearingQuiet--;
  }

  /** Calls every listener once, soon; those that want only new work, only if `newWork`. */
  announce(newWork = true): void {
    // A worker process's every claim and completion is quiet, and often only its claim loop listens.
    if (this.#listeners.size === 0 || (!newWork && this.#hearingQuiet === 0)) return;
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
    this.#hearingQuiet = 0;
  }
}
