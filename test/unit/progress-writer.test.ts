import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProgressWriter } from "../../src/worker/progress-writer.ts";
import { makeJobContext } from "../../src/worker/job-context.ts";
import type { Backend } from "../../src/backend/backend.ts";
import type { JobRecord } from "../../src/core/job.ts";
import { FakeClock } from "../../src/core/clock.ts";

/** A write function whose writes the test settles by hand, in order. */
function manualWrites(): { writes: Array<{ value: string; settle: (error?: Error) => void }>; write: (f: number, m: string | undefined) => Promise<unknown> } {
  const writes: Array<{ value: string; settle: (error?: Error) => void }> = [];
  return {
    writes,
    write: (fraction, message) => new Promise<void>((resolve, reject) => {
      writes.push({ value: `${fraction} ${message ?? ""}`, settle: (error) => (error ? reject(error) : resolve()) });
    }),
  };
}

describe("progress writer", () => {
  it("awaited reports are each written, in order", async () => {
    const { writes, write } = manualWrites();
    const writer = new ProgressWriter(write);
    for (const [i, value] of ["a", "b", "c"].entries()) {
      const done = writer.report(i, value);
      writes[i]?.settle();
      await done;
    }
    assert.deepEqual(writes.map((w) => w.value), ["0 a", "1 b", "2 c"]);
  });

  it("reports made while a write is in flight collapse into the newest, and all of them settle with it", async () => {
    const { writes, write } = manualWrites();
    const writer = new ProgressWriter(write);
    const first = writer.report(0.1, "first");
    const skipped = writer.report(0.2, "skipped");
    const newest = writer.report(0.3, "newest");
    assert.equal(writes.length, 1, "one write in flight");
    writes[0]?.settle();
    await first;
    await Promise.resolve();
    assert.deepEqual(writes.map((w) => w.value), ["0.1 first", "0.3 newest"]);
    writes[1]?.settle(new Error("connection reset"));
    await assert.rejects(skipped, /connection reset/, "a collapsed report learns the fate of the write that replaced it");
    await assert.rejects(newest, /connection reset/);
    const after = writer.report(0.4, "after");
    assert.equal(writes.length, 3, "a failed write frees the writer");
    writes[2]?.settle();
    await after;
  });
});

describe("progress writer: failures", () => {
  it("a write that throws instead of rejecting fails its report and frees the writer", async () => {
    let calls = 0;
    const writer = new ProgressWriter(() => {
      if (calls++ === 0) throw new Error("not connected");
      return Promise.resolve();
    });
    await assert.rejects(() => writer.report(0.1, undefined), /not connected/);
    // A free writer starts its write inside report(): a count of 2 here means it was sent, not
    // queued behind the write that threw (which would never send it).
    const next = writer.report(0.2, undefined);
    assert.equal(calls, 2, "the next report is written, not queued for ever");
    await next;
  });

  it("ctx.progress calls nobody awaits, whose writes fail, are reported once per write and leave no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      let writes = 0;
      const backend = { progress: () => Promise.reject(new Error(`connection reset ${++writes}`)) } as unknown as Backend;
      const tracked = new Set<Promise<unknown>>();
      const reported: unknown[] = [];
      const claimed = { job: { id: "j1", attempt: 1 } as JobRecord, token: "tok" };
      const ctx = makeJobContext(backend, claimed, new AbortController().signal, { clock: new FakeClock(), writes: tracked, report: (e) => reported.push(e) });
      // A loop that reports every row without awaiting (what the README invites).
      for (let i = 1; i <= 3; i++) void ctx.progress(i / 3, `row ${i}`);
      await Promise.allSettled([...tracked]);
      await new Promise((resolve) => setImmediate(resolve)); // unhandled rejections are raised once microtasks drain
      assert.deepEqual(unhandled, [], "a failed progress write must not end the worker process");
      assert.deepEqual(reported.map((e) => (e as Error).message), ["connection reset 1", "connection reset 2"], "one report per failed write (row 1, then rows 2-3 collapsed)");
      await assert.rejects(ctx.progress(1), /connection reset 3/, "a caller that awaits still learns its write failed");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
