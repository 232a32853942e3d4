// What the backend asks of its server on connecting (server-check.ts): Redis 6.2 or later, or every
// call is refused with a ConfigError before a script could fail half way; and a maxmemory-policy
// that cannot evict jobs silently, or a warning. On redis-server processes of this file's own, one
// of them behind a proxy that makes it say it is an older version.
import assert from "node:assert/strict";
import { once } from "node:events";
import { type Server, type Socket, connect, createServer } from "node:net";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { evictionHazard, versionProblem } from "../../src/backend/redis/server-check.ts";
import { ConfigError } from "../../src/index.ts";
import { RedisProcesses, freePort, until } from "./redis-processes.ts";

const servers = new RedisProcesses();
after(() => servers.stopAll());

const MARKER = "redis_version:";

/** Relays to `port`; while `older` is set, INFO replies say the major version is 5 (same length, so RESP stays valid). */
class VersionProxy {
  older = true;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(port: number): Promise<{ proxy: VersionProxy; port: number }> {
    let proxy: VersionProxy | undefined;
    const server = createServer((client) => proxy?.relay(client, port));
    proxy = new VersionProxy(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    return { proxy, port: address.port };
  }

  relay(client: Socket, port: number): void {
    const upstream = connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => (client.destroy(), upstream.destroy()));
    }
    client.pipe(upstream);
    let held = "";
    upstream.on("data", (chunk: Buffer) => {
      let text = held + chunk.toString("latin1");
      // A marker cut by a chunk boundary waits for the rest (a reply that is not finished): the
      // longest end of the text that begins the marker is held back.
      let keep = Math.min(MARKER.length, text.length);
      while (keep > 0 && !MARKER.startsWith(text.slice(-keep))) keep--;
      held = keep > 0 ? text.slice(-keep) : "";
      text = text.slice(0, text.length - keep);
      if (this.older) text = text.replace(/redis_version:\d/g, "redis_version:5");
      client.write(Buffer.from(text, "latin1"));
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
    await once(this.#server, "close");
  }
}

describe("redis: what the server must be", () => {
  it("a server older than 6.2 is named in a ConfigError; 6.2 and later, and a reply without a version, are taken", () => {
    const info = (version: string): string => `# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n`;
    for (const version of ["5.0.7", "6.0.16", "6.1.9"]) {
      const problem = versionProblem(info(version));
      assert.ok(problem instanceof ConfigError, version);
      assert.match(problem.message, new RegExp(`needs Redis 6\\.2 or later .*runs ${version.replaceAll(".", "\\.")}$`));
    }
    for (const version of ["6.2.0", "7.0.15", "7.4.1", "8.0.2", "10.0.0"]) assert.equal(versionProblem(info(version)), undefined, version);
    assert.equal(versionProblem("# Server\r\nredis_mode:standalone\r\n"), undefined);
  });

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

  it("on a server too old, calls are refused with a ConfigError once its version is known, and nothing is written; a newer server after a reconnect is used", async () => {
    const port = await freePort();
    await servers.start(port);
    const admin = new Redis({ port, lazyConnect: true });
    await admin.connect();
    assert.match(await admin.info("server"), /^redis_version:[6-9]\./m, "the proxy's rewrite assumes a one-digit major version");
    const { proxy, port: proxied } = await VersionProxy.start(port);
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${proxied}`, prefix: "old" });
    const refused = async (): Promise<unknown> => backend.counts().then(() => undefined, (error: unknown) => error);
    try {
      await until(async () => (await refused()) instanceof ConfigError, "calls refused", 10);
      const error = await refused();
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /needs Redis 6\.2 or later \(XTRIM MINID, ZMSCORE\); this server runs 5\./);
      const job = { id: "0190a0a0-0000-7000-8000-000000000001", task: "t", queue: "q", payloadJson: "{}", priority: 0, runAt: 1, maxAttempts: 3, key: undefined, owner: undefined };
      await assert.rejects(backend.enqueue({ jobs: [job], now: 1 }), ConfigError);
      assert.deepEqual(await admin.keys("{old}:*"), [], "nothing was written");
      // The server is upgraded (here: the proxy stops pretending) and the connection is made again.
      proxy.older = false;
      await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
      await until(async () => (await refused()) === undefined, "calls taken again", 10);
      assert.deepEqual(await backend.enqueue({ jobs: [job], now: 1 }), [{ job: { id: job.id, state: "queued" }, created: true }]);
    } finally {
      await backend.close();
      await proxy.close();
      admin.disconnect();
    }
  });
});
