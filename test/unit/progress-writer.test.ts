import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProgressWriter } from "../../src/worker/progress-writer.ts";

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
