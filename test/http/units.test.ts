// The pieces under offload/http, without a server: signatures and their expiry on a FakeClock,
// job tokens, the artifact store's file rules, the public job view, and ctx.artifacts.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { LocalFolderStore, Signer, artifactRef, parseArtifactRef } from "../../src/artifacts/index.ts";
import { createJobToken, tokenAllows } from "../../src/http/access.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { publicJob } from "../../src/http/job-view.ts";
import { ConfigError, Offload } from "../../src/index.ts";
import type { JobRecord } from "../../src/index.ts";
import { FakeClock } from "../../src/testing/index.ts";

const SECRET = "unit-secret-0123456789abcdef";
const JOB = "01890000-0000-7000-8000-000000000001";
const OTHER = "01890000-0000-7000-8000-000000000002";
const dir = mkdtempSync(join(tmpdir(), "offload-units-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("Signer", () => {
  it("accepts its own signature until the expiry, on the clock it was given", () => {
    const clock = new FakeClock();
    const signer = new Signer(SECRET, clock);
    const expires = clock.now() + 1_000;
    const sig = signer.sign("artifact", `${JOB}/a.pdf`, expires);
    assert.equal(signer.verify("artifact", `${JOB}/a.pdf`, expires, sig), true);
    clock.advance(999);
    assert.equal(signer.verify("artifact", `${JOB}/a.pdf`, expires, sig), true);
    clock.advance(1);
    assert.equal(signer.verify("artifact", `${JOB}/a.pdf`, expires, sig), false, "expired at the instant");
  });

  it("refuses another purpose, subject, expiry or key, and malformed signatures", () => {
    const clock = new FakeClock();
    const signer = new Signer(SECRET, clock);
    const expires = clock.now() + 60_000;
    const sig = signer.sign("artifact", JOB, expires);
    assert.equal(signer.verify("job-token", JOB, expires, sig), false);
    assert.equal(signer.verify("artifact", OTHER, expires, sig), false);
    assert.equal(signer.verify("artifact", JOB, expires + 1, sig), false);
    assert.equal(new Signer(`${SECRET}x`, clock).verify("artifact", JOB, expires, sig), false);
    assert.equal(signer.verify("artifact", JOB, expires, ""), false);
    assert.equal(signer.verify("artifact", JOB, Number.NaN, sig), false);
    // The last base64url character carries 2 spare bits; a changed one must not pass as "the same bytes".
    const last = sig.at(-1) ?? "";
    const sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(last) ^ 1;
    const respelled = sig.slice(0, -1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[sibling];
    assert.equal(Buffer.from(respelled, "base64url").equals(Buffer.from(sig, "base64url")), true, "same bytes when decoded");
    assert.equal(signer.verify("artifact", JOB, expires, respelled), false);
  });

  it("will not work with a short secret", () => {
    assert.throws(() => new Signer("short"), /at least 16 bytes/);
  });

  it("names the missing secret when it is undefined (an unset environment variable)", () => {
    // The README's own line, `secret: process.env.OFFLOAD_HTTP_SECRET!`, with the variable unset.
    const unset = process.env["OFFLOAD_TEST_NO_SUCH_VARIABLE"]!;
    assert.throws(() => new Signer(unset), (e: unknown) => e instanceof ConfigError && /signing secret \(createJobsHttp's secret\).*got undefined.*OFFLOAD_HTTP_SECRET/.test(e.message));
    assert.throws(() => createJobsHttp({ offload: new Offload({ backend: "sqlite::memory:" }), secret: unset }), ConfigError);
  });
});

describe("job tokens", () => {
  it("are for one job, read-only unless asked, and expire", () => {
    const clock = new FakeClock();
    const signer = new Signer(SECRET, clock);
    const read = createJobToken(signer, JOB, { ttlMs: 60_000 });
    const full = createJobToken(signer, JOB, { ttlMs: 60_000, cancel: true });
    assert.equal(tokenAllows(signer, read, JOB, "read"), true);
    assert.equal(tokenAllows(signer, read, JOB, "cancel"), false);
    assert.equal(tokenAllows(signer, full, JOB, "cancel"), true);
    assert.equal(tokenAllows(signer, read, OTHER, "read"), false);
    assert.equal(tokenAllows(signer, read.replace(".r.", ".rc."), JOB, "cancel"), false, "scope is signed");
    assert.equal(tokenAllows(signer, "garbage", JOB, "read"), false);
    clock.advance(60_000);
    assert.equal(tokenAllows(signer, read, JOB, "read"), false);
  });
});

describe("LocalFolderStore", () => {
  const store = new LocalFolderStore(join(dir, "store"));

  it("stores bytes, text and streams, and lists them without temporary files", async () => {
    await store.put(JOB, "a.txt", "hello");
    await store.put(JOB, "b.bin", new Uint8Array([1, 2, 3]));
    await store.put(JOB, "c.txt", Readable.from([Buffer.from("stre"), Buffer.from("amed")]));
    assert.deepEqual((await store.list(JOB)).map((a) => [a.name, a.size]), [["a.txt", 5], ["b.bin", 3], ["c.txt", 8]]);
    const c = await store.get(JOB, "c.txt");
    assert.equal(await new Response(c?.body).text(), "streamed");
    assert.deepEqual(readdirSync(join(dir, "store", JOB)).sort(), ["a.txt", "b.bin", "c.txt"]);
  });

  it("refuses names that are paths or hidden, and ids that are not job ids", async () => {
    for (const name of ["../x", "a/b", ".hidden", "", "a..b", "x".repeat(201)]) {
      await assert.rejects(store.put(JOB, name, "x"), /artifact name/, name);
    }
    await assert.rejects(store.put("../../etc", "a.txt", "x"), /not a job id/);
    assert.equal(await store.get(JOB, "../a.txt"), undefined);
  });

  it("serves and lists only files it wrote, not what a symbolic link in a job's folder points at", async () => {
    const secret = join(dir, "outside.txt");
    writeFileSync(secret, "not an artifact");
    await store.put(JOB, "real.txt", "mine");
    symlinkSync(secret, join(dir, "store", JOB, "link.txt"));
    assert.equal(await store.get(JOB, "link.txt"), undefined);
    assert.deepEqual((await store.list(JOB)).map((a) => a.name).filter((n) => n === "link.txt" || n === "real.txt"), ["real.txt"]);
  });

  it("leaves nothing behind when a stream fails half way", async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("partial");
      throw new Error("disk on fire");
    }
    await assert.rejects(store.put(OTHER, "half.txt", broken()), /disk on fire/);
    assert.deepEqual(await store.list(OTHER), []);
    assert.deepEqual(readdirSync(join(dir, "store", OTHER)), []);
  });
});

describe("the public job view", () => {
  it("turns this job's artifact references into URLs, and only this job's", () => {
    const job = { id: JOB, task: "t", queue: "q", state: "succeeded", payload: { secret: 1 }, priority: 0, runAt: 0, attempt: 1, maxAttempts: 3,
      key: undefined, worker: "host:1:x", leaseUntil: undefined, cancelRequested: false, progress: 1, progressMessage: "done",
      result: { mine: artifactRef(JOB, "r.pdf"), theirs: artifactRef(OTHER, "r.pdf"), nested: [artifactRef(JOB, "r.pdf")] },
      errors: [], owner: "alice", createdAt: 0, startedAt: 0, finishedAt: 1, expiresAt: 2 } satisfies JobRecord;
    const view = publicJob(job, [], { basePath: "/jobs", artifactUrl: (id, name) => `signed:${id}/${name}` });
    assert.deepEqual(view.result, { mine: `signed:${JOB}/r.pdf`, theirs: artifactRef(OTHER, "r.pdf"), nested: [`signed:${JOB}/r.pdf`] });
    assert.equal("payload" in view, false);
    assert.equal("worker" in view, false);
    assert.equal("owner" in view, false);
    assert.deepEqual(parseArtifactRef(artifactRef(JOB, "r.pdf")), { jobId: JOB, name: "r.pdf" });
    assert.equal(parseArtifactRef(`offload-artifact:${JOB}/../x`), undefined);
  });
});

describe("ctx.artifacts", () => {
  it("writes to the Offload instance's store and returns a reference to this job's file", async () => {
    const store = new LocalFolderStore(join(dir, "inline"));
    const offload = new Offload({ mode: "inline", artifacts: store });
    try {
      const task = offload.task({ name: "make-file", run: async (_: null, ctx) => ctx.artifacts.put("out.csv", "a,b\n1,2\n") });
      const job = await task.enqueue(null);
      assert.equal(await job.result(), artifactRef(job.id, "out.csv"));
      assert.deepEqual((await store.list(job.id)).map((a) => a.name), ["out.csv"]);
    } finally {
      await offload.close();
    }
  });
});
