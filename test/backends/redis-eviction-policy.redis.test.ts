// An evicting Redis drops jobs without a trace: the backend asks the server's maxmemory-policy on
// connecting and warns about a policy that may evict its keys (on a redis-server of its own).
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { evictionHazard } from "../../src/backend/redis/eviction-policy.ts";
import { RedisProcesses, freePort } from "./redis-processes.ts";

const servers = new RedisProcesses();
after(() => servers.stopAll());

describe("redis: maxmemory-policy", () => {
  it("only allkeys-* policies are a hazard: Offload's keys have no TTL for volatile-* to pick", () => {
    const info = (policy: string): string => `# Memory\r\nused_memory:1000\r\nmaxmemory_policy:${policy}\r\nmem_fragmentation_ratio:1.2\r\n`;
    for (const policy of ["allkeys-lru", "allkeys-lfu", "allkeys-random"]) {
      assert.match(evictionHazard(info(policy)) ?? "", new RegExp(`maxmemory-policy is ${policy}: .*noeviction`));
    }
    for (const policy of ["noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"]) {
      assert.equal(evictionHazard(info(policy)), undefined, policy);
    }
    assert.equal(evictionHazard("# Memory\r\nused_memory:1000\r\n"), undefined, "a reply without the field says nothing");
  });

  it("a server that may evict any key is warned about as the backend connects", async () => {
    const port = await freePort();
    await servers.start(port, ["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"]);
    const warned = once(process, "warning") as Promise<[Error & { code?: string }]>;
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}`, prefix: "evict" });
    try {
      const [warning] = await warned;
      assert.equal(warning.code, "OFFLOAD_REDIS_EVICTION");
      assert.match(warning.message, /maxmemory-policy is allkeys-lru/);
    } finally {
      await backend.close();
    }
  });
});
