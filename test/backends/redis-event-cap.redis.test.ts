// Redis: the event cap given in code is checked as the URL's ?maxEvents= is. A fractional cap
// made the feed trim's MINID an invalid stream id: the script failed after all its writes, so an
// enqueue that stored its jobs was reported failed (and a retry stored them twice).
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { Redis } from "ioredis";
import { unlinkMatching } from "./redis-helpers.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { T0, newJob } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `r${randomToken().slice(0, 8)}`;

it("a maxEvents that is not a positive integer is refused when the backend is made", async () => {
  for (const maxEvents of [100.5, 0, -1, Number.NaN]) {
    let made: RedisBackend;
    try {
      made = new RedisBackend({ url, prefix: `${run}-refused`, maxEvents });
    } catch (error) {
      assert.match(String(error), /maxEvents must be a positive integer/);
      continue;
    }
    // Closed before failing: an open client would keep the test process alive.
    await made.close();
    assert.fail(`maxEvents ${maxEvents} was accepted`);
  }
});

it("a fractional maxEvents never gets as far as a write that fails after storing its jobs", async () => {
  let made: RedisBackend;
  try {
    made = new RedisBackend({ url, prefix: `${run}-fraction`, maxEvents: 100.5 });
  } catch {
    return; // refused up front: nothing can be half-written
  }
  try {
    // 300 events cross the trim point at 256.
    for (let i = 0; i < 3; i++) await made.enqueue({ jobs: Array.from({ length: 100 }, () => newJob({ id: uuidv7() })), now: T0 });
  } finally {
    await made.close();
  }
});

it("with an integer cap, enqueues that cross the trim point all succeed", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-cap`, maxEvents: 100 });
  try {
    for (let i = 0; i < 3; i++) await b.enqueue({ jobs: Array.from({ length: 100 }, () => newJob({ id: uuidv7() })), now: T0 });
    assert.equal((await b.counts())[0]?.counts.queued, 300);
  } finally {
    await b.close();
  }
});

after(async () => {
  const admin = new Redis(url);
  try {
    await unlinkMatching(admin, `{${run}-*`);
  } finally {
    await admin.quit();
  }
});
