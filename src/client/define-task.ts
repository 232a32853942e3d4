// Turns a task definition into the typed Task users enqueue through, and the RegisteredTask the
// worker runs. Everything that can be wrong with an enqueue is checked here, before storage:
// schema, JSON-ability, size, options. A rejected enqueue stores nothing.
import type { NewJob } from "../backend/backend.ts";
import { checkAttempts, retryPolicy } from "../core/backoff.ts";
import { MAX_TIME_MS, toMs } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { checkQueueName, describe, isName, isStorableText, refuseUnknownOptions } from "../core/names.ts";
import { uuidv7 } from "../core/ids.ts";
import { encodeJson } from "../core/json.ts";
import { type StandardSchemaV1, validate } from "../core/schema.ts";
import { callForCaller } from "../backend/backend-errors.ts";
import type { InlineRunner } from "./inline-runner.ts";
import { JobHandle } from "./job-handle.ts";
import type { Offload } from "./offload.ts";
import type { EnqueueOptions, RegisteredTask, Task, TaskDefinition, TaskDefinitionWithSchema } from "./task.ts";

const MAX_KEY_LENGTH = 512;

/** An idempotency key or owner: 1-512 UTF-16 code units (JavaScript's `length`), storable text. */
function checkLabel(what: "key" | "owner", value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_KEY_LENGTH || !isStorableText(value)) {
    throw new ConfigError(`${what} must be a string of 1-${MAX_KEY_LENGTH} UTF-16 code units, without U+0000 or a lone surrogate`);
  }
}

/** Priorities every backend orders alike and stores as a 32-bit integer. */
function checkPriority(priority: unknown, what: string): number {
  if (typeof priority !== "number" || !Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
    throw new ConfigError(`${what} must be an integer from -1,000,000 to 1,000,000, got ${String(priority)}`);
  }
  return priority;
}

/** Every field of a task definition, no more and no fewer (the compiler checks both ways). */
const TASK_OPTIONS = Object.keys({
  name: true, queue: true, schema: true, retry: true, timeout: true, retryIf: true, priority: true, run: true,
} satisfies Record<keyof TaskDefinitionWithSchema<StandardSchemaV1, unknown>, true>);

type AnyDefinition = TaskDefinition<unknown, unknown> | TaskDefinitionWithSchema<StandardSchemaV1, unknown>;

export function defineTask(
  offload: Offload,
  definition: AnyDefinition,
  inline: InlineRunner | undefined,
): { task: Task<unknown, unknown>; registered: RegisteredTask } {
  if (typeof definition !== "object" || definition === null) throw new ConfigError(`a task definition must be an object, got ${describe(definition)}`);
  const name = definition.name;
  if (!isName(name)) {
    throw new ConfigError("a task needs a name of 1-200 characters, without U+0000 or a lone surrogate");
  }
  // A misspelt field (`timout`, Celery's `max_retries`) left the task without it, silently.
  refuseUnknownOptions(definition, TASK_OPTIONS, `task ${name}`);
  // Checked here, once, for plain JavaScript callers: a bad one failed every job at run time, or
  // every enqueue (retry options are checked by retryPolicy).
  if (typeof definition.run !== "function") throw new ConfigError(`task ${name}: run must be a function, got ${describe(definition.run)}`);
  if (definition.retryIf != null && typeof definition.retryIf !== "function") throw new ConfigError(`task ${name}: retryIf must be a function, got ${describe(definition.retryIf)}`);
  if (definition.priority != null) checkPriority(definition.priority, `task ${name}: priority`);
  const queue = checkQueueName(definition.queue ?? "default");
  const retry = retryPolicy(definition.retry);
  const schema = definition.schema;
  if (schema != null && typeof (schema as { "~standard"?: { validate?: unknown } })["~standard"]?.validate !== "function") {
    throw new ConfigError(`task ${name}: schema must be a Standard Schema (zod, valibot, arktype…), with ~standard.validate`);
  }
  const run = definition.run as (payload: unknown, ctx: Parameters<RegisteredTask["run"]>[1]) => unknown;

  const registered: RegisteredTask = {
    name,
    queue,
    retry,
    timeoutMs: definition.timeout === undefined ? undefined : toMs(definition.timeout, `timeout of ${name}`),
    retryIf: definition.retryIf,
    // The payload is validated again here: the worker may run a newer schema than the enqueuer.
    run: async (payload, ctx) => run(schema ? await validate(name, schema, payload) : payload, ctx),
  };

  /** `index`: the payload's place in an enqueueMany batch, named in a serialization error. */
  function prepare(payload: unknown, options: EnqueueOptions, now: number, index?: number): NewJob {
    const attempts = checkAttempts(options.attempts ?? retry.attempts, "attempts");
    const priority = checkPriority(options.priority ?? definition.priority ?? 0, "priority");
    checkLabel("key", options.key);
    checkLabel("owner", options.owner);
    // Checked in inline mode too, where it is ignored: a bad delay must fail the app's tests as it
    // would fail the app in production.
    const at = runAt(options, now);
    return {
      id: uuidv7(now),
      task: name,
      queue: checkQueueName(options.queue ?? queue),
      payloadJson: encodeJson(payload, index === undefined ? `payload of ${name}` : `payload [${index}] of the batch of ${name}`, offload.maxPayloadBytes),
      priority,
      runAt: inline ? now : at,
      maxAttempts: attempts,
      key: options.key,
      owner: options.owner,
    };
  }

  /**
   * The one transaction of an enqueueMany: per-job options may name it (each the same), but a batch
   * is written in one statement, so it cannot join two transactions, or one for some jobs only.
   * Dropping a tx silently would commit jobs the caller may roll back: refused instead.
   */
  function batchTx(perJob: readonly EnqueueOptions[]): unknown {
    const txs = new Set(perJob.map((o) => o.tx ?? undefined)); // null is no tx, as in enqueue()
    if (txs.size > 1) throw new ConfigError("enqueueMany writes one batch in one transaction: give every job the same tx, or none");
    return perJob[0]?.tx;
  }

  async function enqueueAll(jobs: NewJob[], tx: unknown): Promise<JobHandle<unknown>[]> {
    const backend = await offload.backend();
    // A tx this backend cannot join would be dropped, and the job committed whatever the caller's
    // transaction then does. Inline mode (tests of the app) runs the job at once anyway: there
    // the tx is ignored, as eager modes ignore it, so app code that passes one runs unchanged.
    // An in-memory backend is a test's (it is not shared across processes): the app's tests run
    // against it the code that passes its PostgreSQL transaction in production, as in inline mode.
    if (tx != null && !inline && !backend.capabilities.transactionalEnqueue && backend.capabilities.sharedAcrossProcesses) {
      throw new ConfigError(`enqueue({ tx }): the ${backend.name} backend cannot join your transaction, and the job would be stored at once whatever the transaction does; enqueue into PostgreSQL inside the transaction (the outbox relay then moves jobs to this backend: docs/postgres.md), or leave tx out`);
    }
    // null is no transaction, as undefined is (docs/decisions.md): backends test for undefined.
    const results = await callForCaller(backend, (b) => b.enqueue({ jobs, now: offload.clock.now(), tx: tx ?? undefined }));
    if (inline) {
      for (const r of results) if (r.created) await inline.runToEnd(r.job.id);
    }
    return results.map((r) => new JobHandle<unknown>(r.job.id, offload.jobs));
  }

  const task: Task<unknown, unknown> = {
    name,
    queue,
    async enqueue(payload, given) {
      const options = enqueueOptions(given);
      if (schema) await validate(name, schema, payload);
      const job = prepare(payload, options, offload.clock.now());
      const [handle] = await enqueueAll([job], options.tx);
      if (!handle) throw new Error("backend returned no job for enqueue");
      return handle;
    },
    async enqueueMany(payloads, options) {
      const now = offload.clock.now();
      if (!Array.isArray(payloads)) throw new ConfigError(`enqueueMany takes an array of payloads, got ${describe(payloads)}`);
      // A hole ([1, , 3]) is a payload of undefined, as enqueue(undefined) is, not a job without fields.
      payloads = Array.from(payloads as unknown[]);
      const optionsFor = typeof options === "function" ? options : () => options;
      if (schema) await Promise.all(payloads.map((p, i) => validate(name, schema, p, i)));
      const perJob = payloads.map((p, i) => enqueueOptions(optionsFor(p, i)));
      const jobs = payloads.map((p, i) => prepare(p, perJob[i] ?? {}, now, i));
      return jobs.length === 0 ? [] : enqueueAll(jobs, batchTx(perJob));
    },
    job(id) {
      return new JobHandle<unknown>(id, offload.jobs);
    },
  };
  return { task, registered };
}

/** Every option of EnqueueOptions, no more and no fewer (the compiler checks both ways). */
const ENQUEUE_OPTIONS = Object.keys({
  delay: true, runAt: true, priority: true, queue: true, key: true, attempts: true, owner: true, tx: true,
} satisfies Record<keyof EnqueueOptions, true>);

/** Options as given by plain JavaScript too: `null` or a string there is a mistake, not "no options". */
function enqueueOptions(given: EnqueueOptions | undefined): EnqueueOptions {
  if (given === undefined) return {};
  if (typeof given !== "object" || given === null || Array.isArray(given) || given instanceof Promise) {
    // A Promise: an async per-job options function, whose options would all be ignored.
    throw new ConfigError(`enqueue options must be an object${given instanceof Promise ? " (per-job options cannot be async)" : ""}, got ${given instanceof Promise ? "a Promise" : describe(given)}`);
  }
  refuseUnknownOptions(given, ENQUEUE_OPTIONS, "enqueue");
  if (given.runAt !== undefined && given.delay !== undefined && given.delay !== 0) {
    throw new ConfigError("give delay or runAt, not both: one of them would be ignored");
  }
  return given;
}


function runAt(options: EnqueueOptions, now: number): number {
  if (options.runAt !== undefined) {
    const at = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (!Number.isFinite(at)) throw new ConfigError(`runAt must be a valid Date or epoch ms, got ${String(options.runAt)}`);
    // Backends store whole ms (PostgreSQL's bigint refuses 1.5); up, so never earlier than asked.
    const whole = Math.ceil(at);
    if (!Number.isSafeInteger(whole) || Math.abs(whole) > MAX_TIME_MS) throw new ConfigError(`runAt is out of range, got ${String(options.runAt)}`);
    return whole;
  }
  if (options.delay === undefined) return now;
  const at = now + toMs(options.delay, "delay");
  if (at > MAX_TIME_MS) throw new ConfigError(`delay is out of range, got ${String(options.delay)}`);
  return at;
}
