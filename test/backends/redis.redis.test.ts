// The conformance suite on Redis (127.0.0.1:6379, or $OFFLOAD_TEST_REDIS_URL). Each case gets its
// own key prefix, and the prefix's keys are deleted afterwards, so parallel test files never meet.
import { after } from "node:test";
import { Redis } from "ioredis";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken } from "../../src/core/ids.ts";
import { defineBackendSuite } from "../conformance/suite.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `t${randomToken().slice(0, 8)}`;
let n = 0;

defineBackendSuite("redis", async () => new RedisBackend({ url, prefix: `${run}-${n++}` }));

after(async () => {
  const admin = new Redis(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `{${run}-*`, "COUNT", 1_000);
      if (keys.length > 0) await admin.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await admin.quit();
  }
});
