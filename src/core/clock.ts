// Time is a dependency: every component reads `now` from a Clock and waits through it, so tests
// can drive time with FakeClock instead of sleeping.

export interface Clock {
  now(): number;
  /** Resolves after `ms` of this clock's time, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** setTimeout's limit: a longer delay fires after 1 ms (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      // Waits longer than the limit (a 30-day timeout) go in steps rather than ending at once.
      const wait = (left: number): void => {
        timer = setTimeout(() => {
          if (left > MAX_TIMER_MS) {
            wait(left - MAX_TIMER_MS);
            return;
          }
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, Math.min(left, MAX_TIMER_MS));
      };
      // A deadline already past (callers pass `deadline - now`) is no wait, and no warning from node.
      wait(Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

interface Sleeper {
  readonly at: number;
  readonly resolve: () => void;
}

/** A clock that moves only when told to. `advance()` wakes every sleeper whose time has come. */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #watchers: Array<{ readonly ms: number; readonly resolve: () => void }> = [];

  constructor(start: number = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      if (ms <= 0) {
        resolve();
        return;
      }
      const sleeper: Sleeper = {
        at: this.#now + ms,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#sleepers.push(sleeper);
      const woken = this.#watchers.filter((w) => w.ms === ms);
      this.#watchers = this.#watchers.filter((w) => w.ms !== ms);
      for (const w of woken) w.resolve();
    });
  }

  /** Number of pending sleeps, so a test can wait until a loop is parked before moving time. */
  get sleepers(): number {
    return this.#sleepers.length;
  }

  /** Resolves once something starts sleeping for exactly `ms`: lets a test move time at the right moment. */
  sleeping(ms: number): Promise<void> {
    if (this.#sleepers.some((s) => s.at === this.#now + ms)) return Promise.resolve();
    return new Promise((resolve) => this.#watchers.push({ ms, resolve }));
  }

  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  set(time: number): void {
    this.#now = time;
    // Earliest deadline first (a stable sort keeps same-time sleepers in call order), as real timers fire.
    const due = this.#sleepers.filter((s) => s.at <= time).sort((a, b) => a.at - b.at);
    this.#sleepers = this.#sleepers.filter((s) => s.at > time);
    for (const s of due) s.resolve();
  }
}
