import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, retryPolicy } from "../../src/core/backoff.ts";
import { toMs } from "../../src/core/duration.ts";
import { uuidv7, isJobId } from "../../src/core/ids.ts";
import { FakeClock } from "../../src/core/clock.ts";
import { Wakeup } from "../../src/core/wakeup.ts";
import { ConfigError } from "../../src/core/errors.ts";

describe("durations", () => {
  it("parses numbers and unit strings", () => {
    assert.equal(toMs(250), 250);
    assert.equal(toMs("250ms"), 250);
    assert.equal(toMs("2s"), 2_000);
    assert.equal(toMs("1.5m"), 90_000);
    assert.equal(toMs("1h"), 3_600_000);
    assert.equal(toMs("7d"), 604_800_000);
  });
  it("rejects what is not a duration, naming the setting", () => {
    assert.throws(() => toMs("ten seconds", "timeout"), (e: unknown) => e instanceof ConfigError && /timeout must look like/.test(e.message));
    assert.throws(() => toMs(-1), ConfigError);
    assert.throws(() => toMs(Number.NaN), ConfigError);
  });
});

describe("backoff", () => {
  const policy = retryPolicy({ attempts: 10, base: "1s", max: "30s", jitter: false });
  it("doubles from the base and stops at the max", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(policy, a)), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
  it("full jitter draws from [0, cap]", () => {
    const jittered = retryPolicy({ base: "1s", max: "30s" });
    assert.equal(backoffDelay(jittered, 3, () => 0), 0);
    assert.equal(backoffDelay(jittered, 3, () => 0.5), 2_000);
    assert.equal(backoffDelay(jittered, 3, () => 0.999999), 4_000);
  });
  it("fixed backoff waits the base each time; defaults are 5 attempts from 1s", () => {
    const fixed = retryPolicy({ backoff: "fixed", base: "5s", jitter: false });
    assert.equal(backoffDelay(fixed, 1), 5_000);
    assert.equal(backoffDelay(fixed, 9), 5_000);
    assert.deepEqual(retryPolicy(undefined), { attempts: 5, backoff: "exponential", baseMs: 1_000, maxMs: 3_600_000, jitter: true });
  });
  it("huge attempt numbers do not overflow", () => {
    assert.equal(backoffDelay(policy, 10_000), 30_000);
  });
});

describe("ids", () => {
  it("UUIDv7s sort by creation time, also within one millisecond", () => {
    const ids = [uuidv7(1_000), uuidv7(1_000), uuidv7(1_000), uuidv7(1_001), uuidv7(2_000_000_000_000)];
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(ids.every(isJobId));
    assert.equal(ids[0]?.[14], "7", "version nibble");
    assert.equal(new Set(Array.from({ length: 10_000 }, () => uuidv7(5))).size, 10_000);
  });
});

describe("fake clock and wakeup", () => {
  it("sleepers wake when time passes their deadline, not before", async () => {
    const clock = new FakeClock(0);
    const deadline = 100;
    let woke = false;
    const sleeping = clock.sleep(deadline).then(() => (woke = true));
    clock.advance(deadline - 1);
    await Promise.resolve();
    assert.equal(woke, false);
    clock.advance(1);
    await sleeping;
    assert.equal(woke, true);
  });
  it("a notify before the wait is not lost", async () => {
    const clock = new FakeClock(0);
    const wakeup = new Wakeup();
    wakeup.notify();
    assert.equal(await wakeup.wait(1_000, clock), true);
    const timedOut = wakeup.wait(1_000, clock);
    await clock.sleeping(1_000);
    clock.advance(1_000);
    assert.equal(await timedOut, false);
  });
});
