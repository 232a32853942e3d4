// Bad input gets a clear, typed error, and nothing is stored.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { z } from "zod";
import {
  BackendOpenError, ConfigError, JobNotFoundError, NotSerializableError, Offload, PayloadTooLargeError, Retry, ValidationError, registerBackend,
} from "../../src/index.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { nextEvent } from "../../src/testing/index.ts";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";

function app(options: { maxPayloadBytes?: number } = {}) {
  const offload = new Offload({ backend: "sqlite::memory:", ...options });
  const signup = offload.task({
    name: "signup.welcome",
    schema: z.object({ email: z.email(), name: z.string().min(1), plan: z.enum(["free", "pro"]) }),
    run: (p) => `hello ${p.name}`,
  });
  const loose = offload.task({ name: "loose", run: (p: unknown) => p });
  return { offload, signup, loose };
}

async function stored(offload: Offload): Promise<number> {
  return (await offload.jobs.list({ limit: 1000 })).length;
}

/** `{ a: { a: … { a: 1 } } }`, `depth` levels deep. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe("bad input", () => {
  it("a payload failing the schema is a ValidationError naming each field", async () => {
    const { offload, signup } = app();
    await assert.rejects(
      signup.enqueue({ email: "not-an-email", name: "", plan: "gold" } as never),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.equal(e.code, "VALIDATION");
        assert.equal(e.task, "signup.welcome");
        assert.deepEqual(e.issues.map((i) => i.path).sort(), ["email", "name", "plan"]);
        assert.match(e.message, /email/);
        return true;
      },
    );
    assert.equal(await stored(offload), 0);
    await offload.close();
  });

  it("payloads that are not JSON: functions, BigInt, symbols, cycles, Maps, nesting past the stack", async () => {
    const { offload, loose } = app();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    const cases: Array<[unknown, RegExp]> = [
      [{ callback: () => 1 }, /callback: a function/],
      [{ amount: 10n }, /amount: BigInt/],
      [{ tag: Symbol("x") }, /tag: a symbol/],
      [cyclic, /self: circular/],
      [{ seen: new Map() }, /seen: Map/],
      [{ n: Number.NaN }, /n: NaN is not a finite number/],
      [{ list: [1, { deep: () => 0 }] }, /list\[1\]\.deep/],
      // What toJSON returns is what would be stored, so that is what is checked.
      [{ price: { toJSON: () => 12n } }, /price: BigInt/],
      // Nested past the call stack: typed, not a bare RangeError.
      [nested(100_000), /nested too deeply/],
    ];
    for (const [payload, message] of cases) {
      await assert.rejects(loose.enqueue(payload), (e: unknown) => e instanceof NotSerializableError && message.test(e.message));
    }
    assert.equal(await stored(offload), 0);
    await offload.close();
  });

  it("a payload with toJSON is stored as toJSON returns it, whatever its own fields hold", async () => {
    const { offload, loose } = app();
    class Money {
      readonly #cache = new Map<string, number>(); // not JSON, and never stored
      readonly cents: bigint;
      constructor(cents: bigint) {
        this.cents = cents;
        this.#cache.set("rate", 1);
      }
      toJSON(): string {
        return `${this.cents} cents`;
      }
    }
    const job = await loose.enqueue({ price: new Money(1250n), at: new Date(0) });
    assert.deepEqual((await job.get()).payload, { price: "1250 cents", at: "1970-01-01T00:00:00.000Z" });
    await offload.close();
  });

  it("a payload over the size limit is refused with its size", async () => {
    const { offload, loose } = app({ maxPayloadBytes: 1024 });
    await assert.rejects(loose.enqueue({ blob: "x".repeat(2000) }), (e: unknown) => e instanceof PayloadTooLargeError && e.limit === 1024 && e.bytes > 2000);
    await loose.enqueue({ blob: "x".repeat(900) });
    assert.equal(await stored(offload), 1);
    await offload.close();
  });

  it("the default size limit is 512 KiB", async () => {
    const { offload, loose } = app();
    const limit = 512 * 1024;
    assert.equal(offload.maxPayloadBytes, limit);
    // A JSON string is its characters plus two quotes: exactly at the limit is stored, one byte over is not.
    await loose.enqueue("y".repeat(limit - 2));
    await assert.rejects(loose.enqueue("y".repeat(limit - 1)), (e: unknown) => e instanceof PayloadTooLargeError && e.limit === limit && e.bytes === limit + 1);
    assert.equal(await stored(offload), 1);
    await offload.close();
  });

  it("enqueueMany stores nothing when any payload is bad", async () => {
    const { offload, signup } = app();
    const good = { email: "a@b.co", name: "Ada", plan: "pro" as const };
    await assert.rejects(signup.enqueueMany([good, good, { ...good, email: "nope" }]), ValidationError);
    assert.equal(await stored(offload), 0);
    await signup.enqueueMany([good, good]);
    assert.equal(await stored(offload), 2);
    await offload.close();
  });

  it("enqueueMany's errors name which payload of the batch is bad", async () => {
    const { offload, signup, loose } = app({ maxPayloadBytes: 100 });
    const good = { email: "a@b.co", name: "Ada", plan: "pro" as const };
    await assert.rejects(
      signup.enqueueMany([good, good, { ...good, email: "nope" }]),
      (e: unknown) => e instanceof ValidationError && e.index === 2 && /^invalid payload \[2\] of the batch for task signup\.welcome: email: /.test(e.message),
    );
    await assert.rejects(
      loose.enqueueMany([1, { ok: true }, { bad: () => 1 }]),
      (e: unknown) => e instanceof NotSerializableError && /^payload \[2\] of the batch of loose is not JSON-serializable at bad: a function/.test(e.message),
    );
    await assert.rejects(
      loose.enqueueMany(["x", "y".repeat(200)]),
      (e: unknown) => e instanceof PayloadTooLargeError && /^payload \[1\] of the batch of loose is 202 bytes/.test(e.message),
    );
    // One payload alone is named as before.
    await assert.rejects(signup.enqueue({ ...good, email: "nope" }), (e: unknown) => e instanceof ValidationError && e.index === undefined && /^invalid payload for task signup\.welcome: email: /.test(e.message));
    assert.equal(await stored(offload), 0);
    await offload.close();
  });

  it("a tx given to a backend that cannot join it is a ConfigError, and nothing is stored; inline mode and in-memory backends ignore it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "offload-tx-"));
    const offload = new Offload({ backend: `sqlite://${join(dir, "jobs.db")}` });
    const loose = offload.task({ name: "loose", run: (p: unknown) => p });
    const tx = { query: () => Promise.resolve({ rows: [] }) }; // what an app passes: its pg client
    const refused = (error: unknown): boolean => error instanceof ConfigError && /sqlite backend cannot join your transaction/.test(error.message);
    await assert.rejects(loose.enqueue(1, { tx }), refused);
    await assert.rejects(loose.enqueueMany([1, 2], { tx }), refused);
    await assert.rejects(loose.enqueueMany([1, 2], () => ({ tx })), refused);
    assert.equal(await stored(offload), 0);
    await loose.enqueue(1, { tx: undefined }); // none given, as written by code that passes one when it has one
    await loose.enqueueMany([1, 2], (p) => ({ tx: p === 1 ? null : undefined })); // null is none too
    assert.equal(await stored(offload), 3);
    await offload.close();
    rmSync(dir, { recursive: true, force: true });
    // App code that passes its transaction runs unchanged in its tests: inline, or on a worker
    // over an in-memory backend (no other process can see it, so it is no production queue).
    const inline = new Offload({ mode: "inline" });
    const echo = inline.task({ name: "echo", run: (p: number) => p });
    assert.equal(await (await echo.enqueue(7, { tx })).result(), 7);
    await inline.close();
    const memory = app();
    await memory.loose.enqueue(1, { tx });
    assert.equal(await stored(memory.offload), 1);
    await memory.offload.close();
  });

  it("bad options are ConfigErrors: queue names, priorities, attempts, delays, keys, owners", async () => {
    const { offload, loose } = app();
    await assert.rejects(loose.enqueue(1, { queue: "has space" }), ConfigError);
    await assert.rejects(loose.enqueue(1, { queue: "{tag}" }), ConfigError);
    await assert.rejects(loose.enqueue(1, { priority: 1.5 }), ConfigError);
    await assert.rejects(loose.enqueue(1, { attempts: 0 }), ConfigError);
    // Every backend stores the count as a 32-bit integer: "for ever" is said as 2,147,483,647.
    await assert.rejects(loose.enqueue(1, { attempts: Number.MAX_SAFE_INTEGER }), /attempts must be an integer from 1 to 2147483647/);
    await assert.rejects(loose.enqueue(1, { delay: "soon" as never }), /delay must look like/);
    await assert.rejects(loose.enqueue(1, { runAt: new Date("nope") }), ConfigError);
    await assert.rejects(loose.enqueue(1, { key: "" }), ConfigError);
    await assert.rejects(loose.enqueue(1, { key: "a\u0000b" }), /key must be a string of 1-512 UTF-16 code units, without U\+0000 or a lone surrogate/);
    await assert.rejects(loose.enqueue(1, { owner: "a\u0000b" }), ConfigError);
    await assert.rejects(loose.enqueue(1, { owner: 42 as never }), ConfigError);
    await assert.rejects(loose.enqueueMany([1, 2], { key: "x".repeat(513) }), ConfigError);
    // From plain JavaScript: options that are not an object, and payloads that are not an array.
    await assert.rejects(loose.enqueue(1, null as never), /enqueue options must be an object, got null/);
    await assert.rejects(loose.enqueue(1, "emails" as never), /got string/);
    await assert.rejects(loose.enqueueMany([1, 2], () => null as never), ConfigError);
    await assert.rejects(loose.enqueueMany("12" as never), /enqueueMany takes an array of payloads, got string/);
    assert.equal(await stored(offload), 0);
    assert.throws(() => offload.task({ name: "loose", run: () => 1 }), /already registered/);
    assert.throws(() => offload.task({ name: "r", retry: { attempts: -1 }, run: () => 1 }), ConfigError);
    assert.throws(() => offload.task({ name: "r", retry: { attempts: 2 ** 31 }, run: () => 1 }), /retry.attempts must be an integer from 1 to 2147483647/);
    assert.throws(() => offload.task({ name: "nul\u0000name", run: () => 1 }), /without U\+0000/);
    assert.throws(() => offload.worker({ id: "w\u00001" }), /worker id must be 1-200 characters, without U\+0000 or a lone surrogate/);
    // Loop periods of 0 ms would spin on the backend.
    assert.throws(() => offload.worker({ lease: 1 }), /heartbeat \(1 ms\) must be shorter than lease \(1 ms\)/);
    assert.throws(() => offload.worker({ heartbeat: 0 }), /heartbeat must be longer than 0/);
    assert.throws(() => offload.worker({ poll: "0s" }), /poll must be longer than 0/);
    await offload.close();
  });

  it("values plain JavaScript callers pass by mistake are ConfigErrors, and nothing is stored", async () => {
    const { offload, loose } = app();
    // Two keys that differ only in a lone surrogate were one key once stored (as U+FFFD).
    await assert.rejects(loose.enqueue(1, { key: "k\ud800" }), /without U\+0000 or a lone surrogate/);
    await assert.rejects(loose.enqueue(1, { owner: "o\udfff" }), ConfigError);
    await assert.rejects(loose.enqueue(1, { queue: 42 as never }), /queue name \(number\) must be a string/);
    await assert.rejects(loose.enqueue(1, { priority: "5" as never }), /priority must be an integer from -1,000,000 to 1,000,000/);
    await assert.rejects(loose.enqueue(1, { runAt: 9e15 }), /runAt is out of range/);
    await assert.rejects(loose.enqueue(1, { delay: "100000000d" }), /delay is out of range/);
    await assert.rejects(loose.enqueue(1, { delay: null as never }), /delay must be a number of ms or a string like "2s", got null/);
    await assert.rejects(loose.enqueue(1, { delay: "1h", runAt: Date.now() }), /give delay or runAt, not both/);
    await assert.rejects(loose.enqueueMany([1, 2], () => Promise.resolve({ priority: 5 }) as never), /per-job options cannot be async/);
    // Payloads JSON.stringify would have turned into {} or null without a word.
    for (const [payload, reason] of [
      [{ at: new Date("nope") }, /at: an invalid Date/], [Promise.resolve(1), /a Promise \(a missing await\?\)/],
      [/re/, /a RegExp is not JSON/], [new Uint8Array([1, 2]), /binary data is not JSON/],
      [new WeakMap(), /WeakMap is not JSON/],
    ] as const) {
      await assert.rejects(loose.enqueue(payload), (e: unknown) => e instanceof NotSerializableError && reason.test(e.message), String(reason));
    }
    assert.equal(await stored(offload), 0);
    // An Error is stored as JSON.stringify has it ({}, plus its own fields): a handler returning
    // Promise.allSettled() of its sends must succeed once they ran, not fail for the record.
    await loose.enqueue({ reason: new Error("x") });
    assert.equal(await stored(offload), 1);
    // A hole in enqueueMany's array is a payload of undefined, stored as null like enqueue(undefined).
    assert.equal((await loose.enqueueMany([1, , 3])).length, 3);
    // null where a value is optional is "none", as undefined is.
    offload.task({ name: "nulls", run: () => 1, schema: null as never, retryIf: null as never, priority: null as never, retry: null as never });
    const defaults = new Offload({ backend: null as never, clock: null as never });
    assert.equal(defaults.url, process.env["OFFLOAD_URL"] ?? "sqlite://./offload.db", "null backend: the default URL");
    await loose.enqueue(1, { delay: 0, runAt: Date.now() });
    // Task definitions, checked when the task is made rather than at every enqueue or run.
    assert.throws(() => offload.task({ name: "nm\ud800", run: () => 1 }), /without U\+0000 or a lone surrogate/);
    assert.throws(() => offload.task({ name: "t1", run: "nope" as never }), /task t1: run must be a function, got string/);
    assert.throws(() => offload.task({ name: "t2", run: () => 1, retryIf: "no" as never }), /retryIf must be a function/);
    assert.throws(() => offload.task({ name: "t3", run: () => 1, priority: Number.NaN }), /task t3: priority must be an integer/);
    assert.throws(() => offload.task({ name: "t4", run: () => 1, schema: {} as never }), /schema must be a Standard Schema/);
    assert.throws(() => offload.task({ name: "t5", run: () => 1, queue: 42 as never }), /queue name \(number\)/);
    assert.throws(() => offload.task({ name: "t6", run: () => 1, timeout: null as never }), /timeout of t6 must be a number of ms/);
    // A retry policy that is no object, or a misspelt field, gave the defaults without a word.
    assert.throws(() => offload.task({ name: "t7", run: () => 1, retry: 5 as never }), /retry must be an object like \{ attempts: 5 \}, got number/);
    assert.throws(() => offload.task({ name: "t8", run: () => 1, retry: { attemps: 3 } as never }), /retry has no option "attemps"/);
    // Worker options: a string of queues was read letter by letter, and misspelt names claimed nothing.
    assert.throws(() => offload.worker({ queues: "reports" as never }), /worker queues must be an array of queue names, got string/);
    assert.throws(() => offload.worker({ queues: ["bad queue"] }), /queue name "bad queue"/);
    assert.throws(() => offload.worker({ concurrency: 2 ** 40 }), /concurrency must be an integer from 1 to 100,000/);
    assert.throws(() => offload.worker(null as never), /worker options must be an object, got null/);
    // A misspelt option (TypeScript checks object literals only) was ignored: the job ran at once,
    // the worker ran with its defaults, the task had no timeout. Undefined is no option.
    const built: Record<string, unknown> = { dealy: "10m" };
    await assert.rejects(loose.enqueue(1, built), /enqueue has no option "dealy" \(did you mean delay\?\) \(it takes delay, runAt/);
    // Objects built away from the call, as plain JavaScript or a config file gives them.
    const perJob = { priority: 1, priorty: 5 };
    await assert.rejects(loose.enqueueMany([1], () => perJob), /enqueue has no option "priorty"/);
    const workerOptions = { concurrency: 2, grace: "30s" };
    assert.throws(() => offload.worker(workerOptions), /offload.worker\(\) has no option "grace" \(it takes .*shutdownGrace/);
    const definition = { name: "t9", run: () => 1, timout: "60s" };
    assert.throws(() => offload.task(definition), /task t9 has no option "timout" \(did you mean timeout\?\)/);
    await loose.enqueue(1, { delay: undefined, tx: undefined });
    await offload.close();
  });

  it("the job service refuses filters it cannot read, instead of widening or breaking the read", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    const failing = offload.task({ name: "fails", retry: { attempts: 1 }, run: () => {
      throw new Error("no");
    } });
    const job = await failing.enqueue(null);
    const worker = offload.worker();
    await worker.start();
    await assert.rejects(job.result({ timeout: "5s" }));
    await worker.stop();
    // A NaN time or a misspelt field used to switch the filter off: every failed job replayed.
    await assert.rejects(offload.jobs.replay({ since: Number.NaN }), /since must be a valid Date or epoch ms/);
    await assert.rejects(offload.jobs.replay({ tak: "fails" } as never), /the replay filter has no field "tak"/);
    await assert.rejects(offload.jobs.replay({ until: "someday" } as never), /until must be a valid Date or epoch ms/);
    await assert.rejects(offload.jobs.replay(null as never), /the replay filter must be an object, got null/);
    assert.equal(await offload.jobs.replay({ until: "2000-01-01T00:00:00Z" } as never), 0, "a date-time string is read as one: nothing failed before 2000");
    assert.equal(await offload.jobs.replay({ queue: "elsewhere", state: undefined } as never), 0, "a field set to undefined is no field");
    assert.equal(await job.state(), "failed", "nothing was replayed");
    assert.equal(await offload.jobs.replay({ since: new Date(0) }), 1, "a Date is an instant too (and type-checks as one: README)");
    await assert.rejects(offload.jobs.list({ limit: -1 }), /limit must be an integer from 1 to 100,000/);
    assert.equal((await offload.jobs.list({ limit: 20_000 })).length, 1);
    await assert.rejects(offload.jobs.list({ limit: 1.5 }), ConfigError);
    await assert.rejects(offload.jobs.list({ state: "FAILED" as never }), /state must be a job state/);
    await assert.rejects(offload.jobs.list({ queue: ["a"] as never }), /queue must be a string, got an array/);
    await assert.rejects(offload.jobs.events({ afterId: Number.NaN }), /afterId must be an event id/);
    await assert.rejects(offload.jobs.events({ afterId: 0, limit: -1 }), ConfigError);
    assert.ok((await offload.jobs.events({} as never)).length > 0, "afterId defaults to 0");
    await assert.rejects(offload.job(undefined as never).state(), /a job id is a string, got undefined/);
    await assert.rejects(offload.job({} as never).cancel(), ConfigError);
    await assert.rejects(offload.job("not-an-id\u0000").state(), JobNotFoundError);
    await offload.close();
  });

  it("new Offload() refuses options it cannot use, instead of opening ./offload.db", () => {
    assert.throws(() => new Offload("sqlite::memory:" as never), /takes an options object \(the URL goes in \{ backend: "…" \}\), got string/);
    assert.throws(() => new Offload(null as never), /got null/);
    assert.throws(() => new Offload({ backend: 42 as never }), /backend must be a URL or an opened Backend, got number/);
    assert.throws(() => new Offload({ backend: {} as never }), /backend must be a URL or an opened Backend, got object/);
    assert.throws(() => new Offload({ backend: "sqlite::memory:", clock: {} as never }), /clock must have now\(\) and sleep/);
  });

  it("a handler's Retry past the last time a Date can show waits until that time: the job stays readable, over HTTP too", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const far = offload.task({ name: "far", run: () => {
        throw new Retry({ in: 8.64e15 }); // a safe integer of ms, but no Date past now
      } });
      const worker = offload.worker({ poll: "60s" });
      const retrying = nextEvent(worker, "retrying");
      await worker.start();
      const job = await far.enqueue(null);
      assert.equal((await retrying).retryAt, 8.64e15);
      assert.deepEqual([(await job.get()).state, (await job.get()).runAt], ["retrying", 8.64e15]);
      const http = createJobsHttp({ offload, secret: "s".repeat(32), authorize: () => true });
      const response = await http.fetch(new Request(`http://app/jobs/${job.id}`));
      assert.equal(response.status, 200, "its public view, whose runAt and retryAt are ISO times");
      assert.equal(((await response.json()) as { retryAt: string }).retryAt, "+275760-09-13T00:00:00.000Z");
      await worker.stop();
    } finally {
      await offload.close();
    }
  });

  it("a handler's ctx.progress with a wrong type or a fraction out of 0..1 fails that attempt with a ConfigError; long messages and log lines are cut, and say so", async () => {
    const offload = new Offload({ mode: "inline" });
    const cases = [
      [() => "0.7", /ctx.progress\(fraction\): a number from 0 to 1, got string/],
      [() => 0.5, /message must be a string, got object/],
      // A percentage (BullMQ's updateProgress(50)) was stored as 1, done, at the first report.
      [() => 50, /ctx.progress\(fraction\): a number from 0 to 1, got 50 \(a fraction: 50% is 0.5\)/],
      [() => -0.1, /a number from 0 to 1, got -0.1/],
      [() => Number.NaN, /a number from 0 to 1, got NaN/],
    ] as const;
    for (const [i, [fraction, expected]] of cases.entries()) {
      // Three attempts allowed, one made: the same code would make the same mistake every time.
      const task = offload.task({ name: `progress.${i}`, retry: { attempts: 3 }, run: async (_p: null, ctx) => {
        await ctx.progress(fraction() as never, (i === 1 ? {} : undefined) as never);
      } });
      const job = await task.enqueue(null);
      await assert.rejects(job.result(), (e: unknown) => e instanceof Error && expected.test(String((e as { cause?: { message?: string } }).cause?.message)));
      assert.deepEqual([await job.state(), (await job.get()).attempt], ["failed", 1], "a ConfigError is not retried");
    }
    // Reported from a timer without await, a mistaken call must not end the process.
    const careless = offload.task({ name: "careless", run: (_p: null, ctx) => new Promise<string>((resolve) => {
      setTimeout(() => {
        void ctx.progress(0.5, {} as never);
        resolve("done");
      }, 0);
    }) });
    assert.equal(await (await careless.enqueue(null)).result(), "done");
    // A fraction summed in steps may pass 1 by a rounding error: kept, as 1.
    const summed = offload.task({ name: "summed", run: async (_p: null, ctx) => {
      await ctx.progress(0.1 + 0.2 + 0.7 + Number.EPSILON * 4);
    } });
    const sum = await summed.enqueue(null);
    await sum.result();
    assert.equal((await sum.get()).progress, 1);
    const chatty = offload.task({ name: "chatty", run: async (_p: null, ctx) => {
      await ctx.progress(0.5, "p".repeat(5_000));
      ctx.log(`${"l".repeat(100_000)}\ud83d\ude00`);
    } });
    const job = await chatty.enqueue(null);
    await job.result();
    const events = await offload.jobs.events({ jobId: job.id, afterId: 0 });
    const message = events.find((e) => e.type === "progress")?.data["message"];
    const line = events.find((e) => e.type === "log")?.data["line"];
    assert.ok(typeof message === "string" && message.length === 1_000 && message.endsWith(" … (cut: 5,000 characters)"), String(message).slice(-40));
    assert.ok(typeof line === "string" && line.length <= 64 * 1024 && line.endsWith(" … (cut: 100,002 characters)"), String(line).slice(-40));
    await offload.close();
  });

  it("a backend URL that cannot be opened names the URL and the reason", async () => {
    const missing = new Offload({ backend: "sqlite:///no/such/folder/jobs.db" });
    await assert.rejects(missing.backend(), (e: unknown) => e instanceof BackendOpenError && e.url === "sqlite:///no/such/folder/jobs.db" && /does not exist/.test(e.message));
    const unknown = new Offload({ backend: "mongodb://localhost" });
    await assert.rejects(unknown.backend(), (e: unknown) => e instanceof BackendOpenError && /unknown scheme mongodb:/.test(e.message));
    const task = missing.task({ name: "t", run: () => 1 });
    await assert.rejects(task.enqueue(1), BackendOpenError);
  });

  it("a misspelt URL parameter is refused, naming the one meant; Redis URLs take no other, PostgreSQL's pass pg's own on", async () => {
    const refused = async (url: string, message: RegExp): Promise<void> => {
      const offload = new Offload({ backend: url });
      await assert.rejects(offload.backend(), (e: unknown) => e instanceof BackendOpenError && message.test(e.message), url);
    };
    await refused("redis://127.0.0.1:1?replyTimout=5s", /unknown parameter "replyTimout" \(did you mean replyTimeout\?\)/);
    await refused("redis://127.0.0.1:1?prefix=a&maxevents=10", /unknown parameter "maxevents" \(did you mean maxEvents\?\)/);
    await refused("redis://127.0.0.1:1?family=6", /unknown parameter "family"; a Redis URL takes prefix, maxEvents, replyTimeout, sentinelPassword/);
    await refused("postgres://127.0.0.1:1/db?shema=app", /unknown URL parameter "shema" \(did you mean schema\?\)/);
    await refused("postgres://127.0.0.1:1/db?replyTimout=5s", /did you mean replyTimeout\?/);
    // pg's own parameters, and ours, go on: this one fails on the closed port, not on its URL.
    const fine = new Offload({ backend: "postgres://127.0.0.1:1/db?sslmode=disable&application_name=x&schema=app&pool=2&poll=100" });
    await assert.rejects(fine.backend(), (e: unknown) => e instanceof BackendOpenError && /ECONNREFUSED/.test(e.message));
  });

  it("a backend URL's password never reaches an error message", async () => {
    const offload = new Offload({ backend: "postgres://app:s3cret@127.0.0.1:1/db?schema=bad-schema!" });
    await assert.rejects(offload.backend(), (e: unknown) => e instanceof BackendOpenError && !e.message.includes("s3cret") && e.url === "postgres://app:***@127.0.0.1:1/db?schema=bad-schema!");
    const sentinel = new Offload({ backend: "redis+sentinel://u:p4ss@127.0.0.1:1?sentinelPassword=t0p" });
    await assert.rejects(sentinel.backend(), (e: unknown) => e instanceof BackendOpenError && !/p4ss|t0p/.test(e.message));
  });

  it("a backend that failed to open is opened again on the next call, not failed for good", async () => {
    let opens = 0;
    registerBackend("flaky-open:", async () => {
      if (++opens === 1) throw new BackendOpenError("flaky-open://db", "the server is still starting");
      return new SqliteBackend({ path: ":memory:" });
    });
    const offload = new Offload({ backend: "flaky-open://db" });
    const task = offload.task({ name: "t", run: () => 1 });
    await assert.rejects(task.enqueue(1), /still starting/);
    const job = await task.enqueue(1);
    assert.equal(await job.state(), "queued");
    assert.equal(opens, 2);
    await offload.close();
  });

  it("the backend defaults to $OFFLOAD_URL", () => {
    const before = process.env["OFFLOAD_URL"];
    process.env["OFFLOAD_URL"] = "sqlite::memory:";
    try {
      assert.equal(new Offload().url, "sqlite::memory:");
      delete process.env["OFFLOAD_URL"];
      assert.equal(new Offload().url, "sqlite://./offload.db");
    } finally {
      if (before === undefined) delete process.env["OFFLOAD_URL"];
      else process.env["OFFLOAD_URL"] = before;
    }
  });
});
