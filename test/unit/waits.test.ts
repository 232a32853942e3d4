// Waits with a timeout shorter than a round trip still see a job that has finished.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Offload } from "../../src/client/offload.ts";
import { WaitTimeoutError } from "../../src/core/errors.ts";
import { FakeClock } from "../../src/testing/index.ts";

describe("a wait with a short timeout still sees a finished job", () => {
  it("result({ timeout: 0 }) of a job that already succeeded gives its result", async () => {
    const offload = new Offload({ mode: "inline", clock: new FakeClock() });
    const task = offload.task({ name: "t", run: () => 42 });
    const job = await task.enqueue(1);
    assert.equal(await job.result({ timeout: 0 }), 42);
    assert.equal(await job.result({ timeout: "0ms" }), 42);
    await offload.close();
  });

  it("result({ timeout: 0 }) of an unfinished job is a WaitTimeoutError at once, leaving no sleeper", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    const task = offload.task({ name: "t", run: () => 42 });
    const job = await task.enqueue(1);
    await assert.rejects(job.result({ timeout: 0 }), WaitTimeoutError);
    assert.equal(clock.sleepers, 0);
    await offload.close();
  });
});
