// redis+cluster:// and redis+sentinel:// URLs → the nodes, credentials and master group ioredis is
// given; TLS files refused when the URL is read. Each client is disconnected at once: nothing here
// needs a server.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
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

describe("?tlsCertFile= and ?tlsKeyFile= (a client certificate)", () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-redis-url-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  /** `content` in a file of `dir` at `name`; its path. */
  const file = (name: string, content: string): string => {
    const path = join(dir, name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, content);
    return path;
  };
  const keyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  // In a directory with a "+" in its name: read as a form, the query made it a space.
  const key = file("c++/client.key", keyPem);
  const refused = (url: string, reason: RegExp): void => {
    assert.throws(() => createClient(url), (e: unknown) => e instanceof BackendOpenError && e.url === withoutPassword(url) && reason.test(e.message), url);
  };

  it("are refused one without the other, or on a plain URL, for every URL form", () => {
    for (const base of ["rediss://127.0.0.1:1", "rediss+cluster://127.0.0.1:7000", "rediss+sentinel://127.0.0.1:26379/main"]) {
      refused(`${base}?tlsCertFile=/etc/client.crt`, /\?tlsCertFile= needs \?tlsKeyFile=, the client certificate's private key/);
      refused(`${base}?prefix=a&tlsKeyFile=/etc/client.key`, /\?tlsKeyFile= needs \?tlsCertFile=, the client certificate it is the key of/);
    }
    for (const base of ["redis://127.0.0.1:1", "redis+cluster://127.0.0.1:7000", "redis+sentinel://127.0.0.1:26379/main"]) {
      refused(`${base}?tlsCertFile=/etc/client.crt&tlsKeyFile=/etc/client.key`, /\?tlsCertFile= and \?tlsKeyFile= need a TLS URL \(rediss:\/\//);
      refused(`${base}?tlsCaFile=/etc/ca.pem&tlsCertFile=/etc/client.crt&tlsKeyFile=/etc/client.key`, /\?tlsCaFile=, \?tlsCertFile= and \?tlsKeyFile= need a TLS URL/);
    }
  });

  it("are read percent-decoded only: a + stays a +, %2B is one too, and bad encoding is refused", () => {
    const noCertificate = file("none.crt", "not a certificate\n");
    // The key is read (a + kept), then the certificate file is found to hold none.
    for (const path of [key, key.replaceAll("+", "%2B")]) {
      refused(`rediss://127.0.0.1:1?tlsCertFile=${noCertificate}&tlsKeyFile=${path}`, /\?tlsCertFile= \S+none\.crt holds no PEM certificate/);
    }
    refused(`rediss://127.0.0.1:1?tlsCertFile=%zz&tlsKeyFile=${key}`, /bad percent-encoding in \?tlsCertFile=/);
  });

  it("refuse a key file that cannot be read, holds no PEM private key, an encrypted one, or one that cannot be read", () => {
    const encrypted = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "p" }).toString();
    const cases = [
      ["/nonexistent/client.key", /cannot read \?tlsKeyFile= \/nonexistent\/client\.key: ENOENT/],
      [file("text.key", "not a key\n"), /\?tlsKeyFile= \S+text\.key holds no PEM private key .*openssl pkey -inform DER/],
      [file("encrypted.key", encrypted), /\?tlsKeyFile= \S+encrypted\.key holds an encrypted private key, and a URL gives no passphrase/],
      [file("broken.key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), /\?tlsKeyFile= \S+broken\.key holds a private key that cannot be read/],
    ] as const;
    for (const [path, reason] of cases) refused(`rediss://127.0.0.1:1?tlsCertFile=/etc/client.crt&tlsKeyFile=${encodeURIComponent(path)}`, reason);
  });

  it("refuse a certificate file that cannot be read, holds no PEM certificate, or one that cannot be read", () => {
    const cases = [
      ["/nonexistent/client.crt", /cannot read \?tlsCertFile= \/nonexistent\/client\.crt: ENOENT/],
      // A key where the certificate goes: a mix-up of the two parameters.
      [key, /\?tlsCertFile= \S+client\.key holds no PEM certificate .*openssl x509 -inform DER -in <file> -out client\.crt/],
      [file("broken.crt", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), /\?tlsCertFile= \S+broken\.crt holds a certificate that cannot be read/],
    ] as const;
    for (const [path, reason] of cases) refused(`rediss+cluster://127.0.0.1:7000?tlsCertFile=${encodeURIComponent(path)}&tlsKeyFile=${encodeURIComponent(key)}`, reason);
  });
});
