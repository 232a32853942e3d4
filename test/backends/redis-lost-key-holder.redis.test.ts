// Redis: an idempotency key whose holder's hash is gone (deleted by hand, as in the bookkeeping
// test's claim case), or whose holder has finished, is free, instead of failing every later
// enqueue or retry with that key; keys held in the layout before per-task keys still hold.
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { Redis } from "ioredis";
import { keyField, unlinkAndQuit } from "./redis-helpers.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken, uuidv7 } from "../../src/core/ids.ts";
import { T0, attemptError, claimOne, enqueueOne, newJob } from "../conformance/fixtures.ts";

const url = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const run = `r${randomToken().slice(0, 8)}`;
const admin = new Redis(url);
let n = 0;

/** `body` on a backend of its own prefix, closed afterwards. */
function onOwnPrefix(body: (b: RedisBackend, keys: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const b = new RedisBackend({ url, prefix: `${run}-${n++}` });
    try {
      await body(b, `${b.keyPrefix}keys`);
    } finally {
      await b.close();
    }
  };
}

/** A job of `task` with key "k", enqueued at `at`, claimed and completed at `at + 1`: its id. */
async function finishedKeyed(b: RedisBackend, task = "t", at = T0): Promise<string> {
  const id = await enqueueOne(b, { id: uuidv7(at), task, key: "k" }, at);
  const c = await claimOne(b, at);
  assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: "1" }], at + 1), ["OK"]);
  return id;
}

/** A job of `task` with key "k" that failed for good at `at` (its own queue, "f"): its id. */
async function failedKeyed(b: RedisBackend, task = "t", at = T0): Promise<string> {
  const id = await enqueueOne(b, { id: uuidv7(at), task, key: "k", queue: "f", maxAttempts: 1 }, at);
  const c = await claimOne(b, at, ["f"]);
  assert.equal(await b.fail({ id, token: c.token, error: attemptError(1, at), retryAt: undefined, now: at }), "FAILED");
  return id;
}

/** Moves `id`'s hold on task "t"'s key "k" to the bare key, as code from before per-task keys wrote it. */
async function holdUnderBareKey(keys: string, id: string): Promise<void> {
  await admin.hdel(keys, keyField("t", "k"));
  await admin.hset(keys, "k", id);
}

const keyed = (task: string, at: number) => newJob({ id: uuidv7(at), task, runAt: at, maxAttempts: 1, key: "k" });

it("an enqueue with a key whose holder's hash is gone stores the new job and hands the key to it", onOwnPrefix(async (b, keys) => {
  const gone = await enqueueOne(b, { key: "k" });
  await admin.del(`${b.keyPrefix}job:${gone}`);
  const job = keyed("t", T0);
  assert.deepEqual(await b.enqueue({ jobs: [job], now: T0 }), [{ job: { id: job.id, state: "queued" }, created: true }]);
  assert.equal(await admin.hget(keys, keyField("t", "k")), job.id);
}));

it("retry of a job whose key is held by a job whose hash is gone requeues it", onOwnPrefix(async (b, keys) => {
  const failed = await failedKeyed(b);
  const holder = await enqueueOne(b, { id: uuidv7(T0 + 1), key: "k" }, T0 + 1);
  await admin.del(`${b.keyPrefix}job:${holder}`);
  assert.equal(await b.retry(failed, T0 + 2), "QUEUED");
  assert.equal(await admin.hget(keys, keyField("t", "k")), failed);
}));

it("a job enqueued before keys were per task (its key under the bare key) frees it when it finishes", onOwnPrefix(async (b, keys) => {
  const id = await enqueueOne(b, { key: "k" });
  await holdUnderBareKey(keys, id);
  const c = await claimOne(b);
  assert.deepEqual(await b.complete([{ id, token: c.token, resultJson: "1" }], T0 + 1), ["OK"]);
  assert.deepEqual(await admin.hgetall(keys), {}, "no field left for good");
}));

it("a key whose field names a finished job (left by a process on code from before per-task keys) is free for enqueue and retry", onOwnPrefix(async (b, keys) => {
  const done = await finishedKeyed(b);
  // Code from before per-task keys frees only the bare key when it ends a job: the field stays.
  await admin.hset(keys, keyField("t", "k"), done);
  const job = keyed("t", T0 + 2);
  assert.deepEqual(await b.enqueue({ jobs: [job], now: T0 + 2 }), [{ job: { id: job.id, state: "queued" }, created: true }], "a new job, not the succeeded one");
  assert.equal(await admin.hget(keys, keyField("t", "k")), job.id);

  const failed = await failedKeyed(b, "u", T0 + 3);
  await admin.hset(keys, keyField("u", "k"), done); // a stale field naming a finished job
  assert.equal(await b.retry(failed, T0 + 4), "QUEUED");
}));

it("a job enqueued before keys were per task (its key under the bare key) holds it for its own task, for enqueue and retry", onOwnPrefix(async (b, keys) => {
  const failed = await failedKeyed(b);
  const legacy = await enqueueOne(b, { id: uuidv7(T0 + 1), key: "k" }, T0 + 1);
  await holdUnderBareKey(keys, legacy);
  const [same, other] = await b.enqueue({ jobs: [keyed("t", T0 + 2), keyed("u", T0 + 2)], now: T0 + 2 });
  assert.deepEqual([same?.created, same?.job.id], [false, legacy], "the same task and key: the job from before");
  assert.equal(other?.created, true, "another task's key is its own");
  assert.equal(await b.retry(failed, T0 + 3), "KEY_IN_USE");
}));

it("prune removes a field of the keys hash that still names the pruned job (left by a process on code from before per-task keys)", onOwnPrefix(async (b, keys) => {
  const done = await finishedKeyed(b);
  // Code from before per-task keys frees only the bare key when it ends a job: the field stays.
  await admin.hset(keys, keyField("t", "k"), done);
  const other = await enqueueOne(b, { id: uuidv7(T0 + 2), task: "u", key: "k" }, T0 + 2); // another task's key: kept
  assert.equal(await b.prune({ succeeded: 0, failed: 0, cancelled: 0 }, T0 + 5), 1);
  assert.deepEqual(await admin.hgetall(keys), { [keyField("u", "k")]: other }, "no field left for good");
}));

after(() => unlinkAndQuit(admin, `{${run}-*`));
