// ChangeListeners: signals coalesce into one call per listener per macrotask, and listeners that
// want only new work are not called for a turn that had only quiet changes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChangeListeners } from "../../src/backend/change-listeners.ts";

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("change listeners", () => {
  it("quiet changes reach every listener but those that want only new work; one work change in the turn reaches all, once", async () => {
    const listeners = new ChangeListeners();
    const calls = { all: 0, work: 0 };
    listeners.add(() => calls.all++);
    listeners.add(() => calls.work++, true);
    listeners.announce(false);
    listeners.announce(false);
    await turn();
    assert.deepEqual(calls, { all: 1, work: 0 });
    listeners.announce(false);
    listeners.announce(true);
    listeners.announce(false);
    await turn();
    assert.deepEqual(calls, { all: 2, work: 1 });
    listeners.announce();
    await turn();
    assert.deepEqual(calls, { all: 3, work: 2 }, "a signal that does not say is new work");
  });
});
