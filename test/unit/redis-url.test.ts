// redis+cluster:// and redis+sentinel:// URLs → the nodes, credentials and master group ioredis is
// given. Each client is disconnected at once: nothing here needs a server.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster, type Redis } from "ioredis";
import { CLIENT_OPTIONS, createClient, parseRedisUrl } from "../../src/backend/redis/connection.ts";
import { BackendOpenError, withoutPassword } from "../../src/core/errors.ts";

interface Seen {
  nodes: unknown;
  username: string | null | undefined;
  password: string | null | undefined;
  name?: string | undefined;
  sentinelPassword?: string | null | undefined;
}

/** What createClient handed ioredis for `url`. */
function seen(url: string): Seen {
  const client = createClient(url);
  client.on("error", () => {});
  client.disconnect();
  if (client instanceof Cluster) {
    const { username, password } = client.options.redisOptions ?? {};
    return { nodes: (client as unknown as { startupNodes: unknown }).startupNodes, username, password };
  }
  const { sentinels, name, username, password, sentinelPassword } = (client as Redis).options;
  return { nodes: sentinels, name, username, password, sentinelPassword };
}

describe("redis+cluster URLs", () => {
  it("take credentials as URLs do: split at the first colon, percent-decoded, '@' before the last one kept", () => {
    assert.deepEqual(seen("redis+cluster://u:p:q@127.0.0.1:7000,127.0.0.1:7001"), {
      nodes: [{ host: "127.0.0.1", port: 7000 }, { host: "127.0.0.1", port: 7001 }], username: "u", password: "p:q",
    });
    assert.equal(seen("redis+cluster://:p%3Ax%40y@127.0.0.1:7000").password, "p:x@y");
    assert.equal(seen("redis+cluster://u:p@x@127.0.0.1:7000").password, "p@x");
    assert.equal(seen("redis+cluster://127.0.0.1:7000/?prefix=a").password, undefined);
  });

  it("accept IPv6 addresses in brackets, with or without a port", () => {
    assert.deepEqual(seen("redis+cluster://[::1]:7000,[::1]").nodes, [{ host: "::1", port: 7000 }, { host: "::1", port: 6379 }]);
  });

  it("refuse a port that is not a plain number in range, naming the URL", () => {
    for (const url of ["redis+cluster://127.0.0.1:0x1B58", "redis+cluster://127.0.0.1:70000", "redis+cluster://127.0.0.1:1e3", "redis+cluster://[::1", "redis+cluster://"]) {
      assert.throws(() => createClient(url), (e: unknown) => e instanceof BackendOpenError && e.url === withoutPassword(url) && !e.message.includes("%zz"), url);
    }
  });
});

describe("redis+sentinel URLs", () => {
  it("name the sentinels, the master group, the data nodes' credentials and the sentinels' password", () => {
    assert.deepEqual(seen("redis+sentinel://u:p:q@127.0.0.1:26380,[::1]:26381/my%20master/?sentinelPassword=s%2Bp&prefix=x"), {
      nodes: [{ host: "127.0.0.1", port: 26380 }, { host: "::1", port: 26381 }],
      name: "my master", username: "u", password: "p:q", sentinelPassword: "s+p",
    });
  });

  it("default a sentinel's port to Sentinel's own, 26379", () => {
    assert.deepEqual(seen("redis+sentinel://127.0.0.1:26380,127.0.0.2/main").nodes, [{ host: "127.0.0.1", port: 26380 }, { host: "127.0.0.2", port: 26379 }]);
  });

  it("refuse a missing group name, a bad port or bad percent-encoding with BackendOpenError", () => {
    for (const url of ["redis+sentinel://127.0.0.1:26379", "redis+sentinel://127.0.0.1:26379/", "redis+sentinel://127.0.0.1:99999/m", "redis+sentinel://127.0.0.1/my%master", "redis+sentinel://u:%zz@127.0.0.1/m"]) {
      assert.throws(() => createClient(url), (e: unknown) => e instanceof BackendOpenError && e.url === withoutPassword(url) && !e.message.includes("%zz"), url);
    }
  });
});

describe("READONLY", () => {
  it("reconnects on a write refused by a demoted master, also from inside a script on Redis 6 (its error wraps the code)", () => {
    const reconnect = CLIENT_OPTIONS.reconnectOnError!;
    assert.equal(reconnect(new Error("READONLY You can't write against a read only replica.")), 1);
    assert.equal(reconnect(new Error("READONLY You can't write against a read only replica. script: 67ed14c1, on @user_script:1.")), 1);
    assert.equal(
      reconnect(new Error("ERR Error running script (call to f_1028a5db): @user_script:4: @user_script: 4: -READONLY You can't write against a read only replica.")),
      1,
    );
    assert.equal(reconnect(new Error("ERR job payload mentions READONLY")), false);
    assert.equal(reconnect(new Error("NOSCRIPT No matching script")), false);
  });
});

describe("reply timeout", () => {
  /** The socketTimeout ioredis got for `url` (on each node, for a cluster). */
  function socketTimeout(url: string): number | undefined {
    const client = createClient(url);
    client.on("error", () => {});
    client.disconnect();
    return client instanceof Cluster ? client.options.redisOptions?.socketTimeout : client.options.socketTimeout;
  }

  it("is 10 s by default, and ?replyTimeout= sets it in ms or as a duration, for every URL form", () => {
    assert.equal(socketTimeout("redis://127.0.0.1:1"), 10_000);
    assert.equal(socketTimeout("redis://127.0.0.1:1?replyTimeout=2500"), 2_500);
    assert.equal(socketTimeout("redis://127.0.0.1:1?prefix=a&replyTimeout=3s"), 3_000);
    assert.equal(socketTimeout("redis+cluster://127.0.0.1:7000?replyTimeout=4s"), 4_000);
    assert.equal(socketTimeout("redis+sentinel://127.0.0.1:26379/main?replyTimeout=5s"), 5_000);
  });
});

describe("?maxEvents=", () => {
  it("takes a whole number written in decimal digits, and refuses every other spelling with BackendOpenError", () => {
    assert.equal(parseRedisUrl("redis://127.0.0.1:1?maxEvents=500").options.maxEvents, 500);
    assert.equal(parseRedisUrl("redis://127.0.0.1:1?prefix=a&maxEvents=9007199254740991").options.maxEvents, 9007199254740991);
    assert.equal(parseRedisUrl("redis://127.0.0.1:1?maxEvents=0100").options.maxEvents, 100);
    assert.equal(parseRedisUrl("redis://127.0.0.1:1").options.maxEvents, undefined);
    // Number() reads all of these as numbers, some of them whole: none is what a user meant to write.
    for (const value of ["0", "-5", "1.5", "1e3", "0x10", "%207", "", "abc", "9007199254740993", "00"]) {
      const url = `redis://127.0.0.1:1?maxEvents=${value}`;
      assert.throws(() => parseRedisUrl(url), (e: unknown) => e instanceof BackendOpenError && /maxEvents/.test(e.message), url);
    }
  });
});
