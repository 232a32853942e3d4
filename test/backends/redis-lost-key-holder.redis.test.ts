// Redis: an idempotency key whose holder's hash is gone (deleted by hand, as in the bookkeeping
// test's claim case), or whose holder has finished, is free, instead of failing every later
// enqueue or retry with that key; keys held in the layout before per-task keys still hold.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { Redis } from "ioredis";
import { keyField, unlinkAndQuit } from "./redis-helpers.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { T0, attemptError, claimOne, enqueueOne } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `r${randomToken().slice(0, 8)}`;
const admin = new Redis(url);
let n = 0;

it("an enqueue with a key whose holder's hash is gone stores the new job and hands the key to it", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const gone = await enqueueOne(b, { key: "k" });
    await admin.del(`${b.keyPrefix}job:${gone}`);
    const id = uuidv7(T0);
    const [result] = await b.enqueue({ jobs: [{ id, task: "t", queue: "q", payloadJson: "1", priority: 0, runAt: T0, maxAttempts: 1, key: "k", owner: undefined }], now: T0 });
    assert.deepEqual(result, { job: { id, state: "queued" }, created: true });
    assert.equal(await admin.hget(`${b.keyPrefix}keys`, keyField("t", "k")), id);
  } finally {
    await b.close();
  }
});

it("retry of a job whose key is held by a job whose hash is gone requeues it", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const failed = await enqueueOne(b, { key: "k", maxAttempts: 1 });
    const c = await claimOne(b);
    assert.equal(await b.fail({ id: failed, token: c.token, error: attemptError(1), retryAt: undefined, now: T0 }), "FAILED");
    const holder = await enqueueOne(b, { id: uuidv7(T0 + 1), key: "k" }, T0 + 1);
    await admin.del(`${b.keyPrefix}job:${holder}`);
    assert.equal(await b.retry(failed, T0 + 2), "QUEUED");
    assert.equal(await admin.hget(`${b.keyPrefix}keys`, keyField("t", "k")), failed);
  } finally {
    await b.close();
  }
});

it("a job enqueued before keys were per task (its key under the bare key) frees it when it finishes", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const id = await enqueueOne(b, { key: "k" });
    await admin.hdel(`${b.keyPrefix}keys`, keyField("t", "k"));
    await admin.hset(`${b.keyPrefix}keys`, "k", id); // the layout before per-task keys
    const c = await claimOne(b);
    assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: "1" }], T0 + 1), ["OK"]);
    assert.deepEqual(await admin.hgetall(`${b.keyPrefix}keys`), {}, "no field left for good");
  } finally {
    await b.close();
  }
});

it("a key whose field names a finished job (left by a process on code from before per-task keys) is free for enqueue and retry", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const done = await enqueueOne(b, { key: "k" });
    const c = await claimOne(b);
    assert.deepEqual(await b.complete([{ id: done, token: c.token, resultJson: "1" }], T0 + 1), ["OK"]);
    // Code from before per-task keys frees only the bare key when it ends a job: the field stays.
    await admin.hset(`${b.keyPrefix}keys`, keyField("t", "k"), done);
    const id = uuidv7(T0 + 2);
    const [result] = await b.enqueue({ jobs: [{ id, task: "t", queue: "q", payloadJson: "1", priority: 0, runAt: T0 + 2, maxAttempts: 1, key: "k", owner: undefined }], now: T0 + 2 });
    assert.deepEqual(result, { job: { id, state: "queued" }, created: true }, "a new job, not the succeeded one");
    assert.equal(await admin.hget(`${b.keyPrefix}keys`, keyField("t", "k")), id);

    const failed = await enqueueOne(b, { task: "u", key: "k", queue: "f", maxAttempts: 1 }, T0 + 3);
    const f = await claimOne(b, T0 + 3, ["f"]);
    assert.equal(await b.fail({ id: failed, token: f.token, error: attemptError(1, T0 + 3), retryAt: undefined, now: T0 + 3 }), "FAILED");
    await admin.hset(`${b.keyPrefix}keys`, keyField("u", "k"), done); // a stale field naming a finished job
    assert.equal(await b.retry(failed, T0 + 4), "QUEUED");
  } finally {
    await b.close();
  }
});

it("a job enqueued before keys were per task (its key under the bare key) holds it for its own task, for enqueue and retry", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const failed = await enqueueOne(b, { key: "k", queue: "f", maxAttempts: 1 });
    const f = await claimOne(b, T0, ["f"]);
    assert.equal(await b.fail({ id: failed, token: f.token, error: attemptError(1), retryAt: undefined, now: T0 }), "FAILED");
    const legacy = await enqueueOne(b, { id: uuidv7(T0 + 1), key: "k" }, T0 + 1);
    await admin.hdel(`${b.keyPrefix}keys`, keyField("t", "k"));
    await admin.hset(`${b.keyPrefix}keys`, "k", legacy); // the layout before per-task keys
    const job = (task: string, at: number) => ({ id: uuidv7(at), task, queue: "q", payloadJson: "1", priority: 0, runAt: at, maxAttempts: 1, key: "k", owner: undefined });
    const [same, other] = await b.enqueue({ jobs: [job("t", T0 + 2), job("u", T0 + 2)], now: T0 + 2 });
    assert.deepEqual([same?.created, same?.job.id], [false, legacy], "the same task and key: the job from before");
    assert.equal(other?.created, true, "another task's key is its own");
    assert.equal(await b.retry(failed, T0 + 3), "KEY_IN_USE");
  } finally {
    await b.close();
  }
});

it("prune removes a field of the keys hash that still names the pruned job (left by a process on code from before per-task keys)", async () => {
  const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
  try {
    const done = await enqueueOne(b, { key: "k" });
    const c = await claimOne(b);
    assert.deepEqual(await b.complete([{ id: done, token: c.token, resultJson: "1" }], T0 + 1), ["OK"]);
    // Code from before per-task keys frees only the bare key when it ends a job: the field stays.
    await admin.hset(`${b.keyPrefix}keys`, keyField("t", "k"), done);
    const other = await enqueueOne(b, { id: uuidv7(T0 + 2), task: "u", key: "k" }, T0 + 2); // another task's key: kept
    assert.equal(await b.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 5), 1);
    assert.deepEqual(await admin.hgetall(`${b.keyPrefix}keys`), { [keyField("u", "k")]: other }, "no field left for good");
  } finally {
    await b.close();
  }
});

after(() => unlinkAndQuit(admin, `{${run}-*`));
