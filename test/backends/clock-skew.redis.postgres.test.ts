// Hosts whose clocks disagree: every call carries the caller's `now`, so a worker compares its
// clock with the server's at start and warns (OFFLOAD_CLOCK_SKEW) when they are seconds apart.
// On the real servers: their clocks are this host's, so an offset clock stands in for a skewed host.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Backend } from "../../src/backend/backend.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { type Clock, FakeClock, systemClock } from "../../src/core/clock.ts";
import { randomToken } from "../../src/core/ids.ts";
import { Offload } from "../../src/index.ts";
import { SKEW_WARN_MS, checkClock, measureSkew, skewWarning } from "../../src/worker/clock-check.ts";
import { openIsolated } from "./postgres-helpers.ts";
import { unlinkAndQuit } from "./redis-helpers.ts";
import { warningsOf } from "../support/warnings.ts";

const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `skew${randomToken().slice(0, 8)}`;
after(() => unlinkAndQuit(new Redis(REDIS_URL), `{${run}*`));

/** The real clock, `offsetMs` off: the clock of a host that is that far ahead (or behind, negative). */
const offset = (offsetMs: number): Clock => ({ now: () => Date.now() + offsetMs, sleep: systemClock.sleep });

const skewWarnings = (): ReturnType<typeof warningsOf> => warningsOf("OFFLOAD_CLOCK_SKEW");

/** One turn of the event loop: process.emitWarning delivers on the next tick. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("clock skew: the arithmetic", () => {
  it("only how far the server's reading lies outside the round trip counts, so a slow reply is no skew", async () => {
    const clock = new FakeClock(1_000_000);
    const reply = (aheadMs: number, tripMs: number) => async (): Promise<number> => {
      clock.advance(tripMs / 2);
      const at = clock.now() + aheadMs;
      clock.advance(tripMs / 2);
      return at;
    };
    assert.equal(await measureSkew(clock, reply(5_000, 80)), 4_960); // at least 5 s - 40 ms ahead
    assert.equal(await measureSkew(clock, reply(-5_000, 80)), -4_960);
    // A 5 s reply from a server whose clock is this one: nothing proven, whatever the middle says.
    assert.equal(await measureSkew(clock, reply(0, 5_000)), 0);
    assert.equal(await measureSkew(clock, reply(2_000, 5_000)), 0);
  });

  it("warns past the threshold only, saying which way", () => {
    assert.equal(skewWarning(SKEW_WARN_MS, "redis"), undefined);
    assert.equal(skewWarning(-SKEW_WARN_MS, "redis"), undefined);
    assert.match(skewWarning(30_000, "redis") ?? "", /30\.0 s behind the redis server's/);
    assert.match(skewWarning(-4_500, "postgres") ?? "", /4\.5 s ahead of the postgres server's/);
  });
});

const servers: Array<[string, () => Promise<Backend>]> = [
  ["redis", async () => new RedisBackend({ url: REDIS_URL, prefix: `${run}-${randomToken().slice(0, 6)}` })],
  ["postgres", () => openIsolated()],
];

for (const [name, open] of servers) {
  describe(`clock skew: ${name}`, () => {
    it("the server's clock, as read, is this host's within a second", async () => {
      const backend = await open();
      try {
        assert.ok(Math.abs(await measureSkew(systemClock, () => backend.serverTime!())) < 1_000);
      } finally {
        await backend.close();
      }
    });

    it("a worker whose host clock is 30 s ahead warns at start, once for the backend however many workers share it", async () => {
      const backend = await open();
      const warnings = skewWarnings();
      const offload = new Offload({ backend, clock: offset(30_000) });
      try {
        offload.task({ name: "t", run: () => null });
        await offload.worker({ poll: "60s" }).start();
        assert.match(await warnings.next, new RegExp(`3\\d\\.\\d s ahead of the ${name} server's`));
        // A second worker, and the check itself again: the warning was given.
        await offload.worker({ poll: "60s" }).start();
        await checkClock(offset(30_000), backend);
        await turn();
        assert.equal(warnings.seen.length, 1);
      } finally {
        warnings.stop();
        await offload.close({ grace: 0 });
        await backend.close();
      }
    });

    it("clocks in step, or a fake clock, give no warning", async () => {
      const backend = await open();
      const warnings = skewWarnings();
      try {
        await checkClock(systemClock, backend);
        await checkClock(new FakeClock(), backend); // 2030: far off on purpose, never checked
        await turn();
        assert.deepEqual(warnings.seen, []);
      } finally {
        warnings.stop();
        await backend.close();
      }
    });
  });
}
