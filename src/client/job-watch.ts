// One look for many waiters. A web process holds a wait per pending request (`job.result()`) and a
// stream per browser following a job (SSE), and a change signal says only "something changed":
// each waiter used to read its own job on every signal, so 1,000 waiters made 1,000 reads per
// signal and the backend's pool a queue (docs/decisions.md, "Many waiters"). Here the waiters of
// one backend follow their jobs through one round of Backend.peekJobs() per signal (ids in chunks),
// and each hears the answer about its own job: it reads the job itself only when that answer is
// something it waits for.
//
// Invariants:
// - a signal that arrives during a round makes one more round after it, so a change committed
//   after a round's read began is always looked at;
// - a round that fails tells every follower of the chunk "unknown": each then reads for itself,
//   and meets the error on its own terms (a wait rides out an outage, a stream ends);
// - while anyone follows, a round also runs every `pollMs` of the clock: the safety net for a
//   missed signal costs one shared look, not one read per waiter;
// - with no follower left, the signal subscription and the poll are let go.
import type { Backend, JobPeek } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";

/** What a round learned of one job: its peek, "gone" (no such job), or "unknown" (the round failed). */
export type Look = JobPeek | "gone" | "unknown";

/** Ids per peekJobs() call: one statement or script of bounded size. */
export const PEEK_CHUNK = 500;

export class JobWatch {
  readonly #backend: Backend;
  readonly #clock: Clock;
  readonly #pollMs: number;
  readonly #followers = new Map<string, Set<(look: Look) => void>>();
  #unwatch: (() => void) | undefined;
  #poll: AbortController | undefined;
  /** The rounds under way, if any (a signal during them adds one more). */
  #rounds: Promise<void> | undefined;
  #again = false;

  constructor(backend: Backend, clock: Clock, pollMs: number) {
    this.#backend = backend;
    this.#clock = clock;
    this.#pollMs = pollMs;
  }

  /** Number of jobs followed, for tests. */
  get size(): number {
    return this.#followers.size;
  }

  /** Calls `hear` with each round's look at job `id` until the returned function is called. */
  follow(id: string, hear: (look: Look) => void): () => void {
    let set = this.#followers.get(id);
    if (!set) {
      set = new Set();
      this.#followers.set(id, set);
    }
    const entry = (look: Look): void => hear(look);
    set.add(entry);
    this.#start();
    return () => {
      const current = this.#followers.get(id);
      if (!current?.delete(entry)) return;
      if (current.size === 0) this.#followers.delete(id);
      if (this.#followers.size === 0) this.#stop();
    };
  }

  /** Tells every follower "unknown" now: each reads for itself (the Offload is closing). */
  wakeAll(): void {
    for (const set of [...this.#followers.values()]) for (const hear of [...set]) hear("unknown");
  }

  #start(): void {
    if (this.#unwatch) return;
    this.#unwatch = this.#backend.watch(() => void this.#changed());
    const poll = new AbortController();
    this.#poll = poll;
    void this.#polling(poll.signal);
  }

  #stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#poll?.abort();
    this.#poll = undefined;
  }

  async #polling(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(this.#pollMs, signal);
      } catch {
        return; // aborted: nobody follows any more
      }
      // The next poll's wait starts once this look is done: a slow backend never has looks piling
      // up, and on a fake clock a test that moves time whenever this loop sleeps moves it at the
      // pace of the looks (moved at once, 15 s went by within a few reads, and leases expired).
      await this.#changed();
    }
  }

  /** A round now, or one more after the rounds under way; resolves when they are done. */
  #changed(): Promise<void> {
    if (this.#rounds) {
      this.#again = true;
      return this.#rounds;
    }
    const rounds = this.#look().finally(() => {
      this.#rounds = undefined;
    });
    this.#rounds = rounds;
    return rounds;
  }

  async #look(): Promise<void> {
    do {
      this.#again = false;
      const ids = [...this.#followers.keys()];
      for (let i = 0; i < ids.length; i += PEEK_CHUNK) await this.#round(ids.slice(i, i + PEEK_CHUNK));
    } while (this.#again && this.#followers.size > 0);
  }

  async #round(ids: readonly string[]): Promise<void> {
    let peeks: Map<string, JobPeek> | undefined;
    try {
      peeks = new Map((await this.#backend.peekJobs(ids)).map((peek) => [peek.id, peek]));
    } catch {
      peeks = undefined; // each follower reads for itself and meets the error there
    }
    for (const id of ids) {
      const look: Look = peeks === undefined ? "unknown" : (peeks.get(id) ?? "gone");
      // Copied: a follower that hears what it waited for unsubscribes while we go through the set.
      for (const hear of [...(this.#followers.get(id) ?? [])]) hear(look);
    }
  }
}
