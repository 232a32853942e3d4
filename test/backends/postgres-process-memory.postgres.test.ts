// What a long-running process holds on to in the PostgreSQL adapter: counted as live objects after
// a full collection (v8.queryObjects), so the count is exact and not a heap size that drifts.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { queryObjects } from "node:v8";
import { uuidv7 } from "../../src/core/ids.ts";
import { openIsolated } from "./postgres-helpers.ts";

const backend = await openIsolated();
after(() => backend.close());

describe("postgres: memory of a long-running process", () => {
  it("answered statements leave no promise behind (a race against a promise settled only at close kept one per call)", async () => {
    const id = uuidv7();
    const calls = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await backend.getJob(id);
    };
    await calls(100); // the pool's connections and prepared statements are made
    const before = queryObjects(Promise, { format: "count" });
    await calls(1_000);
    const grown = queryObjects(Promise, { format: "count" }) - before;
    // Before the fix each call left two (the race's own and its reaction's), 2,000 here.
    assert.ok(grown < 200, `1,000 answered reads left ${grown} more promises alive`);
  });
});
