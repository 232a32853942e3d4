// Turns a task definition into the typed Task users enqueue through, and the RegisteredTask the
// worker runs. Everything that can be wrong with an enqueue is checked here, before storage:
// schema, JSON-ability, size, options. A rejected enqueue stores nothing.
import type { NewJob } from "../backend/backend.ts";
import { checkAttempts, retryPolicy } from "../core/backoff.ts";
import { toMs } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { uuidv7 } from "../core/ids.ts";
import { encodeJson } from "../core/json.ts";
import { type StandardSchemaV1, validate } from "../core/schema.ts";
import type { InlineRunner } from "./inline-runner.ts";
import { JobHandle } from "./job-handle.ts";
import type { Offload } from "./offload.ts";
import type { EnqueueOptions, RegisteredTask, Task, TaskDefinition, TaskDefinitionWithSchema } from "./task.ts";

/** Queue names also form Redis hash tags and URL segments: keep them plain. */
const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const MAX_KEY_LENGTH = 512;

/**
 * An idempotency key or owner: 1-512 characters, none of them U+0000 (PostgreSQL text cannot
 * store it, and every backend must accept the same jobs).
 */
function checkLabel(what: "key" | "owner", value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_KEY_LENGTH || value.includes("\u0000")) {
    throw new ConfigError(`${what} must be a string of 1-${MAX_KEY_LENGTH} characters without U+0000`);
  }
}

export function checkQueueName(queue: string): string {
  if (!QUEUE_NAME.test(queue)) throw new ConfigError(`queue name ${JSON.stringify(queue)} must be 1-100 of A-Z a-z 0-9 _ . : -`);
  return queue;
}

type AnyDefinition = TaskDefinition<unknown, unknown> | TaskDefinitionWithSchema<StandardSchemaV1, unknown>;

export function defineTask(
  offload: Offload,
  definition: AnyDefinition,
  inline: InlineRunner | undefined,
): { task: Task<unknown, unknown>; registered: RegisteredTask } {
  const name = definition.name;
  if (typeof name !== "string" || name.length === 0 || name.length > 200 || name.includes("\u0000")) {
    throw new ConfigError("a task needs a name of 1-200 characters without U+0000");
  }
  const queue = checkQueueName(definition.queue ?? "default");
  const retry = retryPolicy(definition.retry);
  const schema = definition.schema;
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

  function prepare(payload: unknown, options: EnqueueOptions, now: number): NewJob {
    const attempts = checkAttempts(options.attempts ?? retry.attempts, "attempts");
    const priority = options.priority ?? definition.priority ?? 0;
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) throw new ConfigError(`priority must be an integer, got ${priority}`);
    checkLabel("key", options.key);
    checkLabel("owner", options.owner);
    // Checked in inline mode too, where it is ignored: a bad delay must fail the app's tests as it
    // would fail the app in production.
    const at = runAt(options, now);
    return {
      id: uuidv7(now),
      task: name,
      queue: checkQueueName(options.queue ?? queue),
      payloadJson: encodeJson(payload, `payload of ${name}`, offload.maxPayloadBytes),
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
    const txs = new Set(perJob.map((o) => o.tx));
    if (txs.size > 1) throw new ConfigError("enqueueMany writes one batch in one transaction: give every job the same tx, or none");
    return perJob[0]?.tx;
  }

  async function enqueueAll(jobs: NewJob[], tx: unknown): Promise<JobHandle<unknown>[]> {
    const backend = await offload.backend();
    // A tx this backend cannot join would be dropped, and the job committed whatever the caller's
    // transaction then does. Inline mode (tests of the app) runs the job at once anyway: there
    // the tx is ignored, as eager modes ignore it, so app code that passes one runs unchanged.
    if (tx != null && !inline && !backend.capabilities.transactionalEnqueue) {
      throw new ConfigError(`enqueue({ tx }): the ${backend.name} backend cannot join your transaction, and the job would be stored at once whatever the transaction does; enqueue into PostgreSQL inside the transaction (the outbox relay then moves jobs to this backend: docs/postgres.md), or leave tx out`);
    }
    const results = await backend.enqueue({ jobs, now: offload.clock.now(), tx });
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
      const optionsFor = typeof options === "function" ? options : () => options;
      if (schema) await Promise.all(payloads.map((p) => validate(name, schema, p)));
      const perJob = payloads.map((p, i) => enqueueOptions(optionsFor(p, i)));
      const jobs = payloads.map((p, i) => prepare(p, perJob[i] ?? {}, now));
      return jobs.length === 0 ? [] : enqueueAll(jobs, batchTx(perJob));
    },
    job(id) {
      return new JobHandle<unknown>(id, offload.jobs);
    },
  };
  return { task, registered };
}

/** Options as given by plain JavaScript too: `null` or a string there is a mistake, not "no options". */
function enqueueOptions(given: EnqueueOptions | undefined): EnqueueOptions {
  if (given === undefined) return {};
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw new ConfigError(`enqueue options must be an object, got ${describe(given)}`);
  }
  return given;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function runAt(options: EnqueueOptions, now: number): number {
  if (options.runAt !== undefined) {
    const at = options.runAt instanceof Date ? options.runAt.getTime() : options.runAt;
    if (!Number.isFinite(at)) throw new ConfigError(`runAt must be a valid Date or epoch ms, got ${String(options.runAt)}`);
    // Backends store whole ms (PostgreSQL's bigint refuses 1.5); up, so never earlier than asked.
    const whole = Math.ceil(at);
    if (!Number.isSafeInteger(whole)) throw new ConfigError(`runAt is out of range, got ${String(options.runAt)}`);
    return whole;
  }
  return options.delay === undefined ? now : now + toMs(options.delay, "delay");
}
