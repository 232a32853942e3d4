// Durations and run times are whole, finite milliseconds, as every backend stores them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Offload } from "../../src/client/offload.ts";
import { toMs } from "../../src/core/duration.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { Retry } from "../../src/core/outcome.ts";
import { FakeClock } from "../../src/testing/index.ts";

describe("durations and run times are whole, finite milliseconds", () => {
  it("a duration too long for a number is a ConfigError, not Infinity", () => {
    assert.throws(() => toMs(`${"9".repeat(400)}ms`, "delay"), (e: unknown) => e instanceof ConfigError && /delay/.test(e.message));
    assert.throws(() => toMs(`${"9".repeat(20)}d`, "delay"), ConfigError);
    assert.throws(() => toMs(1e300, "delay"), ConfigError);
  });

  it("a numeric duration is rounded to whole ms, as its string form is", () => {
    assert.equal(toMs("1.5ms"), 2);
    assert.equal(toMs(1.5), 2);
    assert.equal(toMs(0.4), 0);
    assert.equal(new Retry({ in: 2.5 }).delayMs, 3);
  });

  it("an enqueue with a fractional delay or runAt stores a whole-ms run time", async () => {
    const clock = new FakeClock(1_000);
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    const task = offload.task({ name: "t", run: () => 1 });
    const delayed = await (await task.enqueue(1, { delay: 1.5 })).get();
    assert.equal(delayed.runAt, 1_002);
    const at = await (await task.enqueue(1, { runAt: 5_000.25 })).get();
    assert.equal(at.runAt, 5_001);
    await assert.rejects(task.enqueue(1, { runAt: 1e300 }), ConfigError);
    await assert.rejects(task.enqueue(1, { delay: `${"9".repeat(400)}s` as `${number}s` }), ConfigError);
    await offload.close();
  });
});
