// Change signals on SQLite are local and synchronous to reason about (an in-memory database has no
// other process), so this pins that only real changes signal: a worker's idle upkeep (an empty
// claim, a rescue or a staging pass that finds nothing, a prune) must not wake its own claim loop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { T0, enqueueOne } from "../conformance/fixtures.ts";

/** Lets the coalesced announcement (one per macrotask, via setImmediate) be delivered. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

describe("sqlite: change signals", () => {
  it("idle upkeep signals nothing; a real change signals once", async () => {
    const b = new SqliteBackend({ path: ":memory:" });
    try {
      let signals = 0;
      const unwatch = b.watch(() => signals++);
      await b.claim({ queues: ["q"], limit: 5, worker: "w", leaseMs: 1_000, now: T0 });
      await b.rescueExpired(T0);
      await b.stageDue(T0);
      await b.prune({ succeeded: 1, failed: 1, cancelled: 1 }, T0);
      await settled();
      assert.equal(signals, 0, "no-op upkeep signalled a change");
      await enqueueOne(b, { runAt: T0 + 10 });
      await settled();
      assert.equal(signals, 1);
      assert.equal(await b.stageDue(T0 + 10), 1);
      await settled();
      assert.equal(signals, 2, "staging a due job is a change");
      unwatch();
    } finally {
      await b.close();
    }
  });
});
