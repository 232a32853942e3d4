// An Offload made per request and never closed (a common mistake) keeps its backend's connections
// open for good: on PostgreSQL a waiting request's LISTEN connection stayed, and after about a
// hundred requests the server refused every client; on Redis every instance kept its connection.
// The tenth instance open at once says so, once per process.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { MANY_INSTANCES } from "../../src/client/offload.ts";
import { Offload } from "../../src/index.ts";
import { warningsOf } from "../support/warnings.ts";

const dir = mkdtempSync(join(tmpdir(), "offload-instances-"));
after(() => rmSync(dir, { recursive: true, force: true }));

it("the tenth Offload with a shared backend open at once warns, once; closed ones and in-memory ones do not count", async () => {
  const warnings = warningsOf("OFFLOAD_MANY_INSTANCES");
  const url = `sqlite://${join(dir, "jobs.db")}`;
  const open: Offload[] = [];
  try {
    // Made and closed one after the other, as a test suite does: never many at once.
    for (let i = 0; i < 2 * MANY_INSTANCES; i++) {
      const offload = new Offload({ backend: url });
      await offload.backend();
      await offload.close();
    }
    // In-memory stores hold no connection (a test's `sqlite::memory:` or inline Offload).
    for (let i = 0; i < MANY_INSTANCES; i++) {
      const offload = new Offload({ backend: "sqlite::memory:" });
      open.push(offload);
      await offload.backend();
    }
    assert.deepEqual(warnings.seen, []);

    for (let i = 0; i < MANY_INSTANCES - 1; i++) {
      const offload = new Offload({ backend: url });
      open.push(offload);
      await offload.backend();
    }
    assert.deepEqual(warnings.seen, [], `${MANY_INSTANCES - 1} open at once are not yet too many`);
    const tenth = new Offload({ backend: url });
    open.push(tenth);
    await tenth.backend();
    assert.match(await warnings.next, /10 Offload instances have a sqlite backend open at once[\s\S]*one Offload per process/);

    const more = new Offload({ backend: url });
    open.push(more);
    await more.backend();
    // A warning is emitted on the next tick: one more turn, and still only the one.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.seen.length, 1, "once per process");
  } finally {
    warnings.stop();
    await Promise.all(open.map((o) => o.close()));
  }
});
