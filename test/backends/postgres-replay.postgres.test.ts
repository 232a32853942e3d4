// Bulk replay on PostgreSQL from several processes at once (operators running `offload jobs
// replay` side by side, or a script and the dashboard): each failed job is queued again exactly
// once, and the statements never deadlock on each other's rows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { T0, newJob } from "../conformance/fixtures.ts";
import { POSTGRES_URL, dropSchema, uniqueSchema } from "./postgres-helpers.ts";

describe("postgres: replays at once", () => {
  it("three overlapping replays on two connections queue each failed job once, without a deadlock", async () => {
    const schema = uniqueSchema("replay");
    const one = await PostgresBackend.open({ url: POSTGRES_URL, schema });
    const two = await PostgresBackend.open({ url: POSTGRES_URL, schema });
    try {
      for (let round = 0; round < 5; round++) {
        const now = T0 + round * 1_000;
        const jobs = Array.from({ length: 400 }, (_, i) => newJob({ queue: i % 2 ? "a" : "b", maxAttempts: 1 }));
        await one.enqueue({ jobs, now });
        const claimed = await one.claim({ queues: ["a", "b"], limit: 1_000, worker: "w", leaseMs: 10_000, now });
        for (const c of claimed) {
          await one.fail({ id: c.job.id, token: c.token, error: { attempt: 1, name: "E", message: "x", stack: undefined, worker: "w", at: now }, retryAt: undefined, now });
        }
        const replayed = await Promise.all([one.replay({}, now), two.replay({ queue: "a" }, now), two.replay({ task: "t" }, now)]);
        assert.equal(replayed.reduce((a, b) => a + b, 0), 400, `round ${round}: each failed job replayed once (${replayed.join(" + ")})`);
        const again = await one.claim({ queues: ["a", "b"], limit: 1_000, worker: "w", leaseMs: 10_000, now });
        assert.equal(again.length, 400);
        await one.complete(again.map((c) => ({ id: c.job.id, token: c.token, resultJson: "1" })), now);
      }
    } finally {
      await one.close();
      await two.close();
      await dropSchema(schema);
    }
  });
});
