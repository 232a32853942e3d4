// Redis over TLS, as managed services run it (ElastiCache with in-transit encryption, Redis Cloud,
// Upstash) and as a self-managed server with a private CA does: rediss:// to one server and
// rediss+cluster:// to a Cluster whose nodes talk TLS to each other too, the private CA given by
// ?tlsCaFile=, and servers that require a client certificate (?tlsCertFile=, ?tlsKeyFile=).
// redis-server processes of the test's own (Debian's redis-server is built with TLS), listening
// on TLS only, with a CA and certificates made by openssl here. Connections that fail twice in one
// burst, which ended the process, go through tls-fail-twice-proxy.ts.
import assert from "node:assert/strict";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster, Redis } from "ioredis";
import { closeClient, createClient, subscriberClient } from "../../src/backend/redis/connection.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { BackendOpenError, BackendUnavailableError } from "../../src/core/errors.ts";
import { Offload } from "../../src/index.ts";
import { RedisProcesses, freePort, run, until } from "./redis-processes.ts";
import { TlsFailTwiceProxy } from "./tls-fail-twice-proxy.ts";

const servers = new RedisProcesses();
const ca = join(servers.dir, "ca.crt");
const cert = join(servers.dir, "server.crt");
const key = join(servers.dir, "server.key");
const rogueCert = join(servers.dir, "rogue.crt");
const rogueKey = join(servers.dir, "rogue.key");
const clientCert = join(servers.dir, "client.crt");
const clientKey = join(servers.dir, "client.key");
const cliTls = ["--tls", "--cacert", ca];

/**
 * A CA, a server certificate it signed for 127.0.0.1 and localhost, a self-signed one (rogue) for
 * 127.0.0.1, and a client certificate the CA signed.
 */
async function makeCertificates(): Promise<void> {
  const csr = join(servers.dir, "server.csr");
  const ext = join(servers.dir, "san.cnf");
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(servers.dir, "ca.key"), "-out", ca, "-days", "2", "-subj", "/CN=offload test CA"]);
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"]);
  await run("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
  await run("openssl", ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", join(servers.dir, "ca.key"), "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", rogueKey, "-out", rogueCert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
  const clientCsr = join(servers.dir, "client.csr");
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", clientKey, "-out", clientCsr, "-subj", "/CN=offload test client"]);
  await run("openssl", ["x509", "-req", "-in", clientCsr, "-CA", ca, "-CAkey", join(servers.dir, "ca.key"), "-CAcreateserial", "-out", clientCert, "-days", "2"]);
}

/** sentinel.conf lines for a sentinel on TLS only on `port`, reaching its master over TLS. */
function sentinelTls(port: number): string[] {
  return ["port 0", `tls-port ${port}`, `tls-cert-file ${cert}`, `tls-key-file ${key}`, `tls-ca-cert-file ${ca}`, "tls-auth-clients no", "tls-replication yes"];
}

/** Uncaught exceptions from now until stop(): how a socket that fails twice ends a process. */
function catchUncaught(): { readonly errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onUncaught = (error: unknown): void => void errors.push(error);
  process.on("uncaughtException", onUncaught);
  return { errors, stop: () => process.off("uncaughtException", onUncaught) };
}

/** Whether `error` is the BackendUnavailableError of a call, naming a certificate. */
const unavailableNamingCertificate = (error: unknown): boolean => error instanceof BackendUnavailableError && /certificate/.test(error.message);

/** redis-server arguments for TLS only on `port` (no plain port), clients not asked for a certificate. */
function tlsOnly(port: number): string[] {
  return ["--port", "0", "--tls-port", String(port), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"];
}

/** redis-server arguments for TLS only on `port`, clients required to give a certificate the CA signed. */
function clientsCertified(port: number): string[] {
  return [...tlsOnly(port), "--tls-auth-clients", "yes"]; // the later of the two wins
}

/** ?tlsCaFile=, ?tlsCertFile= and ?tlsKeyFile= of the test's CA and client certificate. */
const clientFiles = `tlsCaFile=${encodeURIComponent(ca)}&tlsCertFile=${encodeURIComponent(clientCert)}&tlsKeyFile=${encodeURIComponent(clientKey)}`;

let single = 0;
let certified = 0;
let clusterPorts: number[] = [];

before(async () => {
  await makeCertificates();
  single = await freePort();
  await servers.start(single, tlsOnly(single));
  certified = await freePort();
  await servers.start(certified, clientsCertified(certified));
  clusterPorts = [await freePort(), await freePort(), await freePort()];
  for (const port of clusterPorts) {
    await servers.start(port, [...tlsOnly(port), "--tls-cluster", "yes", "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`]);
  }
  await run("redis-cli", [...cliTls, "--cluster", "create", ...clusterPorts.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
  for (const port of clusterPorts) {
    await until(async () => (await run("redis-cli", [...cliTls, "-p", String(port), "cluster", "info"])).stdout.includes("cluster_state:ok"), `cluster_state:ok on ${port}`, 100);
  }
});
after(() => servers.stopAll());

/** Runs `count` jobs over three queues through `url` with a worker on the same Offload; returns their results. */
async function runJobs(url: string, count: number): Promise<number[]> {
  const offload = new Offload({ backend: url });
  const queues = ["mail", "pdf", "hooks"];
  const tasks = queues.map((queue) => offload.task({ name: `double.${queue}`, queue, run: (payload: { n: number }) => payload.n * 2 }));
  const worker = offload.worker({ queues, concurrency: 4 });
  try {
    await worker.start();
    const handles = await Promise.all(Array.from({ length: count }, async (_, n) => {
      const task = tasks[n % tasks.length];
      if (!task) throw new Error("no task");
      return task.enqueue({ n });
    }));
    return await Promise.all(handles.map((h) => h.result({ timeout: "20s" })));
  } finally {
    await worker.stop();
    await offload.close();
  }
}

const expected = (count: number): number[] => Array.from({ length: count }, (_, n) => n * 2);

describe("redis: TLS", () => {
  it("rediss:// with ?tlsCaFile= runs jobs on a server that listens on TLS only", async () => {
    assert.deepEqual(await runJobs(`rediss://127.0.0.1:${single}?prefix=tls-one&tlsCaFile=${encodeURIComponent(ca)}`, 30), expected(30));
  });

  it("?tlsCaFile= written as a plain path keeps a + in it (the query is not read as a form)", async () => {
    const plus = join(servers.dir, "c++", "ca.pem");
    await run("sh", ["-c", `mkdir -p '${join(servers.dir, "c++")}' && cp '${ca}' '${plus}'`]);
    assert.deepEqual(await runJobs(`rediss://127.0.0.1:${single}?prefix=tls-plus&tlsCaFile=${plus}`, 3), expected(3));
  });

  it("rediss+cluster:// with ?tlsCaFile= runs jobs through a 3-node Cluster whose nodes speak TLS only", { timeout: 60_000 }, async () => {
    // Two installations: their hash tags put their keys in different slots, most likely on
    // different nodes. One names its seeds by host name, which the certificate also covers: over
    // TLS the client connects by that name (the nodes themselves announce 127.0.0.1).
    const seeds = (host: string): string => clusterPorts.map((p) => `${host}:${p}`).join(",");
    const [a, b] = await Promise.all([["tls-a", "127.0.0.1"], ["tls-b", "localhost"]].map(([prefix, host]) =>
      runJobs(`rediss+cluster://${seeds(host ?? "")}?prefix=${prefix}&tlsCaFile=${encodeURIComponent(ca)}`, 30)));
    assert.deepEqual(a, expected(30));
    assert.deepEqual(b, expected(30));
  });

  it("rediss+cluster://: the change feed hears another process's writes", { timeout: 20_000 }, async () => {
    // Over TLS the feed subscribes on a connection of Offload's own to one node of the Cluster
    // (ioredis's Cluster pub/sub connection names no connector): a PUBLISH reaches every node.
    const url = `rediss+cluster://${clusterPorts.map((p) => `127.0.0.1:${p}`).join(",")}?prefix=tls-hear&tlsCaFile=${encodeURIComponent(ca)}`;
    const listening = new RedisBackend({ url });
    const writing = new Offload({ backend: url });
    const unwatches: Array<() => void> = [];
    const told = (): Promise<void> => new Promise<void>((resolve) => void unwatches.push(listening.watch(resolve)));
    try {
      await told(); // once subscribed
      const heard = told();
      await writing.task({ name: "t", run: () => 1 }).enqueue({});
      await heard;
    } finally {
      for (const unwatch of unwatches) unwatch();
      await writing.close();
      await listening.close();
    }
  });

  it("rediss+cluster://: the change feed's connection leaves a node the Cluster drops", async () => {
    // As ioredis's own does: a node a slot refresh no longer lists (failed, removed) may no longer
    // hear the others' publishes, though the connection to it still answers pings.
    const cluster = createClient(`rediss+cluster://127.0.0.1:${clusterPorts[0]}?tlsCaFile=${encodeURIComponent(ca)}`);
    assert.ok(cluster instanceof Cluster);
    cluster.on("error", () => {});
    const subscriber = subscriberClient(cluster);
    assert.ok(subscriber instanceof Redis);
    subscriber.on("error", () => {});
    try {
      await Promise.all([once(cluster, "ready"), once(subscriber, "ready")]);
      const node = cluster.nodes("all").find((n) => n.options.port === subscriber.stream.remotePort);
      assert.ok(node, "the subscriber is connected to a node of the Cluster");
      const closed = once(subscriber, "close");
      cluster.emit("-node", node); // what the Cluster emits when a slot refresh drops the node
      await closed;
      await once(subscriber, "ready");
    } finally {
      await closeClient(subscriber);
      await closeClient(cluster);
    }
  });

  it("rediss+sentinel:// with ?tlsCaFile= follows a master behind a Sentinel, both on TLS only", async () => {
    const sentinel = await freePort();
    // The sentinel's own TLS port, and TLS to the master it watches (tls-replication).
    await servers.startSentinel(sentinel, "tlsmain", single, sentinelTls(sentinel));
    assert.deepEqual(await runJobs(`rediss+sentinel://127.0.0.1:${sentinel}/tlsmain?prefix=tls-sentinel&tlsCaFile=${encodeURIComponent(ca)}`, 30), expected(30));
  });

  it("a certificate the client does not trust fails the call as unavailable, saying so", async () => {
    // Schemes are case-insensitive: REDISS:// connected in plain text (ioredis reads "rediss://" only).
    // A Cluster's slot refresh makes connections of its own and drops their errors: its calls
    // failed with "Failed to refresh slots cache.", which names no certificate.
    const seeds = clusterPorts.map((p) => `127.0.0.1:${p}`).join(",");
    for (const url of [`rediss://127.0.0.1:${single}`, `REDISS://127.0.0.1:${single}`, `rediss+cluster://${seeds}`]) {
      const offload = new Offload({ backend: `${url}?prefix=tls-untrusted&replyTimeout=300` });
      try {
        const task = offload.task({ name: "t", run: () => 1 });
        await assert.rejects(task.enqueue({}), unavailableNamingCertificate);
      } finally {
        await offload.close();
      }
    }
  });

  it("a plain URL to a TLS-only port, or a TLS URL to a plain one, fails with a hint at TLS", async () => {
    // Forgetting rediss:// is the common mistake with a managed Redis: the server closes each plain
    // connection at once, which read as if maxclients were reached. The other way round, the TLS
    // handshake waits for an answer that never comes, and the error said only "is the server reachable?".
    const plain = await freePort();
    await servers.start(plain);
    const cases = [
      [`redis://127.0.0.1:${single}`, /closed it at once.*TLS connections only \(rediss:\/\/\)/],
      [`rediss://127.0.0.1:${plain}`, /does it take TLS on that port\?/],
    ] as const;
    for (const [url, hint] of cases) {
      const offload = new Offload({ backend: `${url}?prefix=tls-hint&replyTimeout=300` });
      try {
        const task = offload.task({ name: "t", run: () => 1 });
        await assert.rejects(task.enqueue({}), (error: unknown) => error instanceof BackendUnavailableError && hint.test(error.message));
      } finally {
        await offload.close();
      }
    }
  });

  it("a server that sends more after the handshake of a certificate the client refuses does not crash the process", async () => {
    // The client rejects the certificate (one error on its socket) and then fails to read what
    // the server sent next in the same burst (a second error on the same socket), as it happened
    // when a client ended its side mid-handshake and the server answered with an alert (seen on
    // a Cluster whose slot refresh failed on an expired certificate and dropped the node
    // connections it was making).
    const proxy = await TlsFailTwiceProxy.start(single, { failing: true });
    const uncaught = catchUncaught();
    const backend = new RedisBackend({ url: `rediss://127.0.0.1:${proxy.port}?prefix=tls-burst&replyTimeout=500` });
    try {
      await assert.rejects(backend.counts());
      await until(async () => proxy.failedClosed >= 1, "a connection refused", 20);
      assert.deepEqual(uncaught.errors, []);
    } finally {
      uncaught.stop();
      await backend.close();
      await proxy.close();
    }
  });

  it("a sentinel whose certificate the client refuses, then sends more, does not crash the process, and calls name the certificate", async () => {
    // ioredis connects to the sentinels themselves (to ask for the master, and to hear of a
    // failover) with options of its own, which named no connector: one of those sockets failing
    // twice was an uncaught exception. A refused sentinel is a proxy on 127.0.0.2, an address the
    // certificate does not name: refused as an expired certificate or another host's would be.
    const sentinel = await freePort();
    await servers.startSentinel(sentinel, "tlsrefused", single, sentinelTls(sentinel));
    const [alone, first] = [await TlsFailTwiceProxy.start(sentinel, { failing: true, host: "127.0.0.2" }), await TlsFailTwiceProxy.start(sentinel, { failing: true, host: "127.0.0.2" })];
    // The reply timeout leaves the refused handshake time to end first, on a loaded machine too:
    // at 300 ms, under load, the call gave up before it, and its error could not name the certificate.
    const query = `prefix=tls-refused&replyTimeout=2000&tlsCaFile=${encodeURIComponent(ca)}`;
    const uncaught = catchUncaught();
    try {
      // The only sentinel refused: ioredis's own error said "All sentinels are unreachable. …
      // Last error: Connection is closed.", not why.
      const offload = new Offload({ backend: `rediss+sentinel://127.0.0.2:${alone.port}/tlsrefused?${query}` });
      try {
        await assert.rejects(offload.task({ name: "t", run: () => 1 }).enqueue({}), unavailableNamingCertificate);
      } finally {
        await offload.close();
      }
      // Listed first, before a good one: the client asks it for the master (refused), then the
      // good one, and once connected to the master subscribes to failovers on both (refused
      // again). A backend of its own: an Offload may make a second client (its change feed's).
      const backend = new RedisBackend({ url: `rediss+sentinel://127.0.0.2:${first.port},127.0.0.1:${sentinel}/tlsrefused?${query}` });
      try {
        await backend.counts();
        await until(async () => first.failedClosed >= 2, "the refused sentinel asked for the master, then for failovers", 20);
      } finally {
        await backend.close();
      }
      assert.ok(alone.failedClosed >= 1);
      assert.deepEqual(uncaught.errors, []);
    } finally {
      uncaught.stop();
      await alone.close();
      await first.close();
    }
  });

  it("a Cluster's change feed connection that meets a certificate the client refuses, then more, does not crash the process", async () => {
    // The change feed subscribes on the Cluster, and ioredis makes a Cluster's pub/sub connection
    // with options of its own, which named no connector. Here the node's certificate changes to
    // one the client does not trust (a rotation gone wrong) while the client's connections stay
    // up, and the feed's connection drops: the one made again meets the new certificate. The node
    // announces the proxy's port, so every connection the client makes to it goes through the proxy.
    const node = await freePort();
    const announced = await freePort();
    const child = await servers.start(node, [
      ...tlsOnly(node), "--tls-cluster", "yes", "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${node}.conf`,
      "--cluster-announce-ip", "127.0.0.1", "--cluster-announce-tls-port", String(announced),
    ]);
    const proxy = await TlsFailTwiceProxy.start(node, { failing: false, port: announced });
    const uncaught = catchUncaught();
    // 2 s: the refused handshake ends before the call gives up, on a loaded machine too (see above).
    const offload = new Offload({ backend: `rediss+cluster://127.0.0.1:${announced}?prefix=tls-feed&replyTimeout=2000&tlsCaFile=${encodeURIComponent(ca)}` });
    try {
      await run("redis-cli", [...cliTls, "-p", String(node), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
      await until(async () => (await run("redis-cli", [...cliTls, "-p", String(node), "CLUSTER", "INFO"])).stdout.includes("cluster_state:ok"), "cluster_state:ok", 50);
      const task = offload.task({ name: "t", run: () => 1 });
      await task.enqueue({});
      const backend = await offload.backend();
      let unwatch = (): void => {};
      await new Promise<void>((resolve) => (unwatch = backend.watch(resolve))); // told once subscribed
      unwatch();
      await run("redis-cli", [...cliTls, "-p", String(node), "CONFIG", "SET", "tls-cert-file", rogueCert, "tls-key-file", rogueKey]);
      proxy.failing = true;
      const rogueCli = ["--tls", "--cacert", rogueCert, "-p", String(node)];
      await run("redis-cli", [...rogueCli, "CLIENT", "KILL", "TYPE", "pubsub"]);
      await until(async () => proxy.failedClosed >= 1, "the feed's connection made again", 20);
      assert.deepEqual(uncaught.errors, []);
      // The calls' connections, made again, meet the certificate too: calls fail as unavailable, naming it.
      await run("redis-cli", [...rogueCli, "CLIENT", "KILL", "TYPE", "normal"]);
      await assert.rejects(task.enqueue({}), unavailableNamingCertificate);
      assert.deepEqual(uncaught.errors, []);
    } finally {
      uncaught.stop();
      await offload.close();
      await proxy.close();
      await servers.stop(child);
    }
  });

  it("?tlsCertFile= and ?tlsKeyFile= give a client certificate: jobs run on a server, a Cluster and behind a Sentinel that require one", { timeout: 60_000 }, async () => {
    const node = await freePort();
    await servers.start(node, [...clientsCertified(node), "--tls-cluster", "yes", "--cluster-enabled", "yes", "--cluster-config-file", `nodes-${node}.conf`, "--cluster-announce-ip", "127.0.0.1"]);
    const cli = [...cliTls, "--cert", clientCert, "--key", clientKey, "-p", String(node)];
    await run("redis-cli", [...cli, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    await until(async () => (await run("redis-cli", [...cli, "CLUSTER", "INFO"])).stdout.includes("cluster_state:ok"), "cluster_state:ok", 50);
    // The sentinel requires one too, and gives its own (the server certificate) to the master.
    const sentinel = await freePort();
    await servers.startSentinel(sentinel, "tlsclient", certified, [...sentinelTls(sentinel), "tls-auth-clients yes"]);
    for (const url of [`rediss://127.0.0.1:${certified}`, `rediss+cluster://127.0.0.1:${node}`, `rediss+sentinel://127.0.0.1:${sentinel}/tlsclient`]) {
      assert.deepEqual(await runJobs(`${url}?prefix=tls-client&${clientFiles}`, 9), expected(9), url);
    }
  });

  it("without a client certificate, or with one the server does not trust, calls fail as unavailable, saying so", async () => {
    // OpenSSL's own message named its source files: "…:error:0A00045C:SSL routines:ssl3_read_bytes:
    // tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:…".
    // The server sends an alert and closes; a client that writes first meets the reset instead,
    // and says what an alert read on another attempt said, or else what a reset at once may mean.
    const caFile = `tlsCaFile=${encodeURIComponent(ca)}`;
    const cases = [
      [caFile, /the server requires a client certificate \(TLS alert "certificate required"\): give one with \?tlsCertFile= and \?tlsKeyFile=|closed it at once.*when it requires a client certificate/],
      [`${caFile}&tlsCertFile=${encodeURIComponent(rogueCert)}&tlsKeyFile=${encodeURIComponent(rogueKey)}`, /the server refused the client certificate \(TLS alert "unknown ca"\)|closed it at once.*or refuses the one given/],
    ] as const;
    for (const [files, saying] of cases) {
      const offload = new Offload({ backend: `rediss://127.0.0.1:${certified}?prefix=tls-no-client&replyTimeout=300&${files}` });
      try {
        await assert.rejects(offload.task({ name: "t", run: () => 1 }).enqueue({}), (error: unknown) => error instanceof BackendUnavailableError && saying.test(error.message));
      } finally {
        await offload.close();
      }
    }
  });

  it("?tlsCaFile= on a plain URL, naming a file that cannot be read or holds no PEM certificate, or a key not the client certificate's, is refused when the backend opens", async () => {
    const der = join(servers.dir, "ca.der");
    const broken = join(servers.dir, "broken.pem");
    await run("openssl", ["x509", "-in", ca, "-outform", "DER", "-out", der]);
    writeFileSync(broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
    const refused = [
      [`redis://127.0.0.1:${single}?tlsCaFile=${encodeURIComponent(ca)}`, /\?tlsCaFile= needs a TLS URL/],
      [`rediss://127.0.0.1:${single}?tlsCaFile=/nonexistent/ca.pem`, /cannot read \?tlsCaFile= \/nonexistent\/ca\.pem/],
      // Files that hold no PEM certificate were taken as CAs, and connections then failed as
      // "self-signed certificate" after the reply timeout.
      [`rediss://127.0.0.1:${single}?tlsCaFile=${encodeURIComponent(key)}`, /holds no PEM certificate/],
      [`rediss://127.0.0.1:${single}?tlsCaFile=${encodeURIComponent(der)}`, /holds no PEM certificate.*openssl x509 -inform DER/],
      [`rediss://127.0.0.1:${single}?tlsCaFile=${encodeURIComponent(broken)}`, /holds a certificate that cannot be read/],
      // Node took a key of another certificate without a word until each connection failed, and
      // the client then stopped connecting for good.
      [`rediss://127.0.0.1:${certified}?tlsCertFile=${encodeURIComponent(clientCert)}&tlsKeyFile=${encodeURIComponent(rogueKey)}`, /\?tlsKeyFile= \S+rogue\.key is not the private key of the certificate in \?tlsCertFile= \S+client\.crt/],
    ] as const;
    for (const [url, reason] of refused) {
      const offload = new Offload({ backend: url });
      try {
        await assert.rejects(offload.backend(), (error: unknown) => error instanceof BackendOpenError && reason.test(error.message));
      } finally {
        await offload.close();
      }
    }
  });
});
