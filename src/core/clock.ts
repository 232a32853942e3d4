// Time is a dependency: every component reads `now` from a Clock and waits through it, so tests
// can drive time with FakeClock instead of sleeping.

export interface Clock {
  now(): number;
  /** Resolves after `ms` of this clock's time, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
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
    const due = this.#sleepers.filter((s) => s.at <= time);
    this.#sleepers = this.#sleepers.filter((s) => s.at > time);
    for (const s of due) s.resolve();
  }
}
