// Strings with a lone UTF-16 surrogate (a string cut in the middle of an emoji, say) are valid
// JavaScript, and other backends store them. PostgreSQL text cannot hold one (node-postgres sends
// U+FFFD in its place) and jsonb refuses the "\ud83d" escape JSON.stringify writes for it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { attemptError, claimOne, newJob, T0 } from "../conformance/fixtures.ts";
import { openIsolated } from "./postgres-helpers.ts";

/** The first half of U+1F600, as `"😀".slice(0, 1)` leaves it. */
const HALF = "\ud83d";

describe("postgres: lone surrogates", () => {
  it("a failure whose message and stack hold a lone surrogate is recorded, the surrogate replaced", async () => {
    const b = await openIsolated();
    try {
      const job = newJob();
      await b.enqueue({ jobs: [job], now: T0 });
      const claimed = await claimOne(b);
      const error = { ...attemptError(1, T0, `bad input ${HALF}`), stack: `Error: ${HALF}\n    at test` };
      assert.equal(await b.fail({ id: job.id, token: claimed.token, error, retryAt: T0 + 1_000, now: T0 }), "RETRYING");
      const stored = await b.getJob(job.id);
      assert.equal(stored?.errors[0]?.message, "bad input \uFFFD");
      assert.equal(stored?.errors[0]?.stack, "Error: \uFFFD\n    at test");
    } finally {
      await b.close();
    }
  });

  it("a key with a lone surrogate, enqueued again while its job is unfinished, returns that job", async () => {
    const b = await openIsolated();
    try {
      const key = `order-${HALF}`;
      const first = newJob({ key });
      const second = newJob({ key });
      const [created] = await b.enqueue({ jobs: [first], now: T0 });
      assert.equal(created?.created, true);
      const [again] = await b.enqueue({ jobs: [second], now: T0 });
      assert.equal(again?.created, false);
      assert.equal(again?.job.id, first.id);
    } finally {
      await b.close();
    }
  });
});
