// Clocks: the FakeClock wakes sleepers in deadline order; the system clock sleeps past setTimeout's limit, and not below 0.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { systemClock } from "../../src/core/clock.ts";
import { FakeClock } from "../../src/testing/index.ts";

describe("FakeClock wakes sleepers in time order", () => {
  it("one advance past several deadlines wakes the earliest first, whatever order they slept in", async () => {
    const clock = new FakeClock(0);
    const woke: string[] = [];
    // Fake-clock sleeps: they end only when the test advances the clock.
    const sleeper = (ms: number, name: string): Promise<number> => clock.sleep(ms).then(() => woke.push(name));
    const all = Promise.all([sleeper(300, "300"), sleeper(100, "100"), sleeper(200, "200 first"), sleeper(200, "200 second")]);
    clock.advance(1_000);
    await all;
    assert.deepEqual(woke, ["100", "200 first", "200 second", "300"]);
  });
});

describe("systemClock sleeps longer than setTimeout's 32-bit limit", () => {
  const LIMIT = 2 ** 31 - 1;

  it("a sleep of more than 24.8 days does not end after 1 ms", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    let done = false;
    const slept = systemClock.sleep(LIMIT + 1_000).then(() => {
      done = true;
    });
    t.mock.timers.tick(LIMIT);
    await Promise.resolve();
    assert.equal(done, false, "woke before its time");
    t.mock.timers.tick(1_000);
    await slept;
    assert.equal(done, true);
  });

  it("aborting a long sleep in its second step rejects with the reason and leaves no timer", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const cleared = t.mock.method(globalThis, "clearTimeout");
    const stop = new AbortController();
    const slept = systemClock.sleep(LIMIT * 2, stop.signal);
    t.mock.timers.tick(LIMIT + 5);
    const reason = new Error("stopped");
    stop.abort(reason);
    await assert.rejects(slept, (e: unknown) => e === reason);
    assert.equal(cleared.mock.callCount(), 1);
  });
});

describe("systemClock with a deadline already past", () => {
  it("a negative sleep is no wait, and gives setTimeout no negative delay (node warns on stderr)", async (t) => {
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    t.mock.method(globalThis, "setTimeout", (callback: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return real(callback, ms);
    });
    await systemClock.sleep(-2);
    assert.deepEqual(delays, [0]);
  });
});
