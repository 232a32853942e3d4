// UUIDv7 ids made in one process keep increasing: many in one millisecond, and across a small clock step back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { uuidv7 } from "../../src/core/ids.ts";
import { Offload } from "../../src/client/offload.ts";
import { FakeClock } from "../../src/testing/index.ts";

function increasing(ids: readonly string[]): boolean {
  return ids.every((id, i) => i === 0 || (ids[i - 1] ?? "") < id);
}

describe("UUIDv7 ids keep increasing", () => {
  it("more ids in one millisecond than the counter's headroom still increase", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7(7_000));
    assert.ok(increasing(ids));
  });

  it("a clock that steps back a little does not make an id smaller than the last one", () => {
    const ids = [uuidv7(20_000), uuidv7(19_990), uuidv7(19_000), uuidv7(20_000), uuidv7(20_001)];
    assert.ok(increasing(ids));
  });

  it("an enqueueMany of 5,000 jobs at one instant gets ids in the batch's order", async () => {
    const offload = new Offload({ backend: "sqlite::memory:", clock: new FakeClock() });
    const task = offload.task({ name: "t", run: () => 1 });
    const handles = await task.enqueueMany(Array.from({ length: 5_000 }, (_, i) => i));
    assert.ok(increasing(handles.map((h) => h.id)));
    await offload.close();
  });
});
