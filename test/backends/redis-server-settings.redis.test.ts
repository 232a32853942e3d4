// Server settings and permissions that production Redis servers have and the other tests never
// use: an ACL user restricted to its prefix (a shared, multi-tenant server), hardening that renames
// INFO and CONFIG, a full `maxclients`, a low `busy-reply-threshold`, an idle `timeout`, and a small
// `client-output-buffer-limit pubsub`. Each runs on a redis-server of its own (never the shared one):
// a worker draining jobs, an app enqueuing, and a change watcher or an SSE stream where it matters.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { NoConnectionError } from "../../src/backend/redis/connection.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { Offload } from "../../src/index.ts";
import { newJob, T0 } from "../conformance/fixtures.ts";
import { RedisProcesses, freePort, until } from "./redis-processes.ts";

const servers = new RedisProcesses();
after(() => servers.stopAll());

/** A private server with these settings, and an admin connection to it (closed by the caller). */
async function serverWith(args: string[]): Promise<{ port: number; admin: Redis }> {
  const port = await freePort();
  await servers.start(port, ["--appendonly", "no", ...args]);
  const admin = new Redis(port, "127.0.0.1");
  admin.on("error", () => {});
  return { port, admin };
}

/** Resolves at the next change `backend` hears (the first call resolves once it is subscribed). */
function nextChange(backend: RedisBackend): Promise<void> {
  return new Promise((resolve) => {
    const stop = backend.watch(() => {
      stop();
      resolve();
    });
  });
}

/** The ids of the server's pub/sub connections. */
async function subscribers(admin: Redis): Promise<string[]> {
  const list = String(await admin.call("CLIENT", "LIST", "TYPE", "pubsub"));
  return [...list.matchAll(/^id=(\d+) /gm)].map((m) => m[1] ?? "");
}

/** A stat of INFO's stats section, as a number. */
async function stat(admin: Redis, name: string): Promise<number> {
  const match = new RegExp(`^${name}:(\\d+)`, "m").exec(await admin.info("stats"));
  return Number(match?.[1] ?? Number.NaN);
}

describe("redis: production server settings and permissions", () => {
  it("an ACL user limited to its prefix's keys and channels, as docs/redis.md gives it, runs everything", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith([]);
    // The line of docs/redis.md, "The permissions Offload needs", for prefix "tenant".
    const line = "on >tenant-pw resetkeys ~{tenant}:* resetchannels &{tenant}:* -@all +@read +@write +@scripting +@pubsub +@connection -@dangerous +time +info +cluster|slots +cluster|info";
    await admin.call("ACL", "SETUSER", "tenant", ...line.split(" "));
    // Another tenant's key, which the user must not reach.
    await admin.set("{other}:secret", "x");
    const url = `redis://tenant:tenant-pw@127.0.0.1:${port}?prefix=tenant&replyTimeout=2s`;
    const app = new Offload({ backend: url });
    const workers = new Offload({ backend: url });
    const watcher = new RedisBackend({ url });
    try {
      const task = app.task({ name: "report", run: () => 0 });
      workers.task({ name: "report", run: async (p: { n: number }, ctx) => {
        await ctx.progress(0.5, "half");
        ctx.log(`line ${p.n}`);
        return p.n * 2;
      } });
      const worker = workers.worker({ concurrency: 4 });
      const errors: Error[] = [];
      worker.on("error", (error) => errors.push(error));
      await worker.start();
      await nextChange(watcher);
      const heard = nextChange(watcher);
      const handles = await task.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n })));
      await heard; // pub/sub on the prefix's channel reaches another process
      assert.deepEqual(await Promise.all(handles.map((h) => h.result({ timeout: "10s" }))), handles.map((_, n) => n * 2));
      const first = handles[0];
      assert.ok(first);
      assert.deepEqual((await app.jobs.events({ jobId: first.id, afterId: 0 })).map((e) => e.type), ["state", "state", "progress", "log", "state"]);
      assert.ok((await app.jobs.events({ afterId: 0 })).length >= 100);
      assert.equal((await app.jobs.list({ limit: 50 })).length, 20);
      assert.equal((await app.jobs.counts())[0]?.counts.succeeded, 20);
      // Cancel, retry, replay, prune: the operations a worker's own runs do not reach.
      const later = await task.enqueue({ n: 99 }, { delay: "1h" });
      await later.cancel();
      await later.retry();
      assert.equal(await later.result({ timeout: "10s" }), 198);
      const backend = await app.backend();
      assert.equal(await backend.prune({ succeeded: 0, failed: 0, cancelled: 0 }, Date.now() + 1_000), 21);
      await worker.stop();
      assert.deepEqual(errors.map((e) => e.message), []);
      // Nothing was refused (ACL LOG lists every refusal), and the user is held to its prefix.
      assert.deepEqual(await admin.call("ACL", "LOG"), []);
      const user = new Redis(port, "127.0.0.1", { username: "tenant", password: "tenant-pw" });
      try {
        await assert.rejects(user.get("{other}:secret"), /NOPERM/);
      } finally {
        user.disconnect();
      }
    } finally {
      await watcher.close();
      await app.close();
      await workers.close();
      await admin.quit();
    }
  });

  it("a server with INFO and CONFIG renamed away (hardening) runs jobs and change signals", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith(["--rename-command", "INFO", "", "--rename-command", "CONFIG", ""]);
    const url = `redis://127.0.0.1:${port}?prefix=renamed&replyTimeout=2s`;
    const offload = new Offload({ backend: url });
    const watcher = new RedisBackend({ url });
    try {
      const task = offload.task({ name: "double", run: (p: { n: number }) => p.n * 2 });
      const worker = offload.worker({ concurrency: 4 });
      worker.on("error", () => {});
      await worker.start();
      await nextChange(watcher);
      const heard = nextChange(watcher);
      const job = await task.enqueue({ n: 21 });
      await heard;
      assert.equal(await job.result({ timeout: "10s" }), 42);
      await worker.stop();
    } finally {
      await watcher.close();
      await offload.close();
      admin.disconnect(); // QUIT is not renamed, but the connection may be mid-reconnect
    }
  });

  it("a server at maxclients: a call given up for want of a connection says the server closes each connection at once", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith(["--maxclients", "3"]);
    const hogs: Redis[] = [];
    // Other clients take every connection left (the admin holds one), before the backend connects.
    for (let i = 0; i < 2; i++) {
      const hog = new Redis(port, "127.0.0.1");
      hog.on("error", () => {});
      hogs.push(hog);
      await hog.ping();
    }
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}?prefix=full&replyTimeout=500ms` });
    try {
      await assert.rejects(backend.counts(), (e: unknown) => e instanceof NoConnectionError && /(?:max number of clients reached|maxclients is reached)/.test(e.message));
      await hogs.pop()?.quit();
      await until(async () => backend.counts().then(() => true, () => false), "a connection once one is free", 50, 10_000);
    } finally {
      await backend.close();
      for (const hog of hogs) hog.disconnect();
      await admin.quit();
    }
  });

  it("an enqueue refused BUSY (another client's script past busy-reply-threshold) is sent again and stored once", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith(["--busy-reply-threshold", "20"]);
    const busy = new Redis(port, "127.0.0.1");
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}?prefix=busy` });
    try {
      await backend.counts(); // connected before the server is busy
      // A script that runs for 600 ms: other clients are answered BUSY after the first 20.
      const spin = "local t = redis.call('TIME'); local from = t[1] * 1e6 + t[2]; repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - from > 600000; return 1";
      const running = busy.eval(spin, 0);
      await until(async () => admin.ping().then(() => false, (error: unknown) => error instanceof Error && error.message.startsWith("BUSY")), "the server answers BUSY", 5);
      const job = newJob();
      const [result] = await backend.enqueue({ jobs: [job], now: T0 });
      assert.equal(await running, 1);
      assert.deepEqual(result, { job: { id: job.id, state: "queued" }, created: true });
      assert.equal((await backend.getJob(job.id))?.state, "queued");
    } finally {
      await backend.close();
      busy.disconnect();
      await admin.quit();
    }
  });

  it("with timeout 2 (idle clients closed), an app that enqueues after a quiet spell, and an idle worker, carry on", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith(["--timeout", "2"]);
    const url = `redis://127.0.0.1:${port}?prefix=idle`;
    const app = new Offload({ backend: url });
    const workers = new Offload({ backend: url });
    try {
      const task = app.task({ name: "echo", run: () => 0 });
      workers.task({ name: "echo", run: (p: { n: number }) => p.n });
      // A poll longer than the test: the worker runs the job on its change signal or not at all.
      const worker = workers.worker({ poll: "60s" });
      worker.on("error", () => {});
      await worker.start();
      assert.equal(await (await task.enqueue({ n: 1 })).result({ timeout: "10s" }), 1);
      // The server closes the app's idle connection (the pub/sub ones are exempt).
      const connections = await stat(admin, "total_connections_received");
      await until(async () => (await stat(admin, "total_connections_received")) > connections, "an idle connection closed and made again", 100, 10_000);
      assert.equal(await (await task.enqueue({ n: 2 })).result({ timeout: "10s" }), 2);
      await worker.stop();
    } finally {
      await app.close();
      await workers.close();
      await admin.quit();
    }
  });

  it("a subscriber dropped by client-output-buffer-limit pubsub comes back: the idle worker wakes, the SSE stream neither misses nor repeats", { timeout: 30_000 }, async () => {
    const { port, admin } = await serverWith(["--client-output-buffer-limit", "pubsub 64kb 32kb 5"]);
    const url = `redis://127.0.0.1:${port}?prefix=burst`;
    const web = new Offload({ backend: url });
    const workers = new Offload({ backend: url });
    try {
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => (release = resolve));
      const progressing = web.task({ name: "steps", run: () => 0 });
      const quick = web.task({ name: "quick", run: () => 0 });
      workers.task({ name: "steps", run: async (_: null, ctx) => {
        for (let step = 1; step <= 5; step++) ctx.log(`step ${step}`);
        await released;
        for (let step = 6; step <= 10; step++) ctx.log(`step ${step}`);
        return "done";
      } });
      workers.task({ name: "quick", run: () => "quick" });
      // Polls longer than the test: a wake-up can only come from the change feed.
      const worker = workers.worker({ poll: "60s" });
      worker.on("error", () => {});
      await worker.start();
      const http = createJobsHttp({ offload: web, secret: "settings-secret-0123456789abcdef", pollInterval: "60s" });
      const job = await progressing.enqueue(null);
      const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
      const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
      assert.ok(reader);
      let text = "";
      const readUntil = async (done: () => boolean): Promise<void> => {
        while (!done()) {
          const chunk = await reader.read();
          if (chunk.done) return;
          text += chunk.value;
        }
      };
      await readUntil(() => text.includes("step 5"));
      // A burst on the prefix's channel, more than the 64 kB hard limit at once: the server drops
      // both processes' subscribers, as it would a subscriber of a busy worker that fell behind.
      const before = await subscribers(admin);
      assert.equal(before.length, 2, "the web process and the worker each subscribe");
      await admin.eval("for i = 1, 2000 do redis.call('PUBLISH', KEYS[1], 'burst' .. string.rep('-', 100) .. ' quiet') end", 1, "{burst}:changed");
      await until(async () => {
        const now = await subscribers(admin);
        return now.length === 2 && now.every((id) => !before.includes(id));
      }, "both subscribers dropped and subscribed again", 20, 10_000);
      release();
      await readUntil(() => text.includes("event: result"));
      const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), "no event repeated, in order");
      const steps = [...text.matchAll(/"line":"step (\d+)"/g)].map((m) => Number(m[1]));
      assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "no log line missed");
      // The idle worker is subscribed again and runs new work without waiting for its poll.
      assert.equal(await (await quick.enqueue(null)).result({ timeout: "10s" }), "quick");
      await worker.stop();
      await http.streams.idle();
    } finally {
      await web.close();
      await workers.close();
      await admin.quit();
    }
  });
});
