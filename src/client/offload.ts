// The entry point: `new Offload({ backend })`, then `offload.task({...})` to define tasks,
// `offload.worker()` to run them, and `offload.job(id)` / `offload.jobs` to look at jobs.
import { DEFAULT_BACKEND_URL, openBackend } from "../backend/open.ts";
import type { Backend, Retention } from "../backend/backend.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { ClosedError, ConfigError } from "../core/errors.ts";
import { type Duration, toMs } from "../core/duration.ts";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "../core/json.ts";
import type { StandardSchemaV1 } from "../core/schema.ts";
import { TaskRegistry } from "../worker/task-registry.ts";
import { Worker, type WorkerOptions } from "../worker/worker.ts";
import { JobHandle } from "./job-handle.ts";
import { JobService } from "./job-service.ts";
import { InlineRunner } from "./inline-runner.ts";
import { defineTask } from "./define-task.ts";
import { describe } from "../core/names.ts";
import type { Task, TaskDefinition, TaskDefinitionWithSchema } from "./task.ts";
import { type ArtifactStore, jobArtifacts } from "../artifacts/store.ts";
import { LocalFolderStore } from "../artifacts/local-folder-store.ts";

/**
 * Instances whose backend, opened from a URL and shared across processes (PostgreSQL, Redis, a
 * SQLite file), is open now. Each holds connections of its own (a pool, a LISTEN or subscriber
 * connection) until close(): an Offload made per request and never closed leaked them, one
 * PostgreSQL connection per waiting request until the server refused everyone, and said nothing.
 */
const openInstances = new Set<Offload>();
/** How many at once earn the warning: more than any app needs (one per backend it uses). */
export const MANY_INSTANCES = 10;
let warnedOfMany = false;

export interface OffloadOptions {
  /** A backend URL (sqlite://file.db, sqlite::memory:, ...) or an opened Backend. Default: $OFFLOAD_URL, else sqlite://./offload.db. */
  readonly backend?: string | Backend;
  /** "inline" runs each job at once inside enqueue(), retries included: for tests of your app. */
  readonly mode?: "queue" | "inline";
  readonly clock?: Clock;
  /** Largest accepted payload, in bytes of JSON. Default 512 KiB. */
  readonly maxPayloadBytes?: number;
  /** Largest stored result, in bytes of JSON. Default 512 KiB. */
  readonly maxResultBytes?: number;
  /** How long finished jobs are kept. Defaults: succeeded 7d, failed 30d, cancelled 7d. */
  readonly retention?: { readonly succeeded?: Duration; readonly failed?: Duration; readonly cancelled?: Duration };
  /** Where `ctx.artifacts.put()` stores files. Default: a LocalFolderStore at $OFFLOAD_ARTIFACTS_DIR or ./.offload/artifacts. */
  readonly artifacts?: ArtifactStore;
}

export class Offload {
  readonly url: string;
  readonly mode: "queue" | "inline";
  readonly clock: Clock;
  readonly registry = new TaskRegistry();
  /** Reads and operator actions on jobs: list, counts, cancel, retry, replay, events. */
  readonly jobs: JobService;
  readonly maxPayloadBytes: number;
  readonly maxResultBytes: number;
  readonly retention: Retention;
  readonly artifacts: ArtifactStore;
  #backend: Promise<Backend> | undefined;
  #closed = false;
  readonly #given: Backend | undefined;
  readonly #workers = new Set<Worker>();
  readonly #inline: InlineRunner | undefined;

  constructor(options: OffloadOptions = {}) {
    // From plain JavaScript: new Offload("redis://…") (a URL where the options go) or a backend of
    // the wrong type opened ./offload.db without a word.
    if (typeof options !== "object" || options === null) {
      throw new ConfigError(`new Offload() takes an options object${typeof options === "string" ? " (the URL goes in { backend: \"…\" })" : ""}, got ${describe(options)}`);
    }
    const given: unknown = options.backend;
    if (given != null && typeof given !== "string" && !isBackend(given)) {
      throw new ConfigError(`backend must be a URL or an opened Backend, got ${describe(given)}`);
    }
    if (options.clock != null && (typeof options.clock.now !== "function" || typeof options.clock.sleep !== "function")) {
      throw new ConfigError("clock must have now() and sleep(ms, signal)");
    }
    const mode: unknown = options.mode ?? "queue";
    // From plain JavaScript a typo ("eager") would otherwise run every job in queue mode, silently.
    if (mode !== "queue" && mode !== "inline") throw new ConfigError(`mode must be "queue" or "inline", got ${JSON.stringify(mode)}`);
    this.mode = mode;
    const backend = options.backend;
    this.#given = typeof backend === "object" && backend !== null ? backend : undefined;
    this.url = this.mode === "inline" ? "sqlite::memory:" : typeof backend === "string" ? backend : this.#given ? this.#given.name : (process.env["OFFLOAD_URL"] ?? DEFAULT_BACKEND_URL);
    this.clock = options.clock ?? systemClock;
    this.maxPayloadBytes = byteLimit("maxPayloadBytes", options.maxPayloadBytes);
    this.maxResultBytes = byteLimit("maxResultBytes", options.maxResultBytes);
    this.retention = {
      succeeded: toMs(options.retention?.succeeded ?? "7d", "retention.succeeded"),
      failed: toMs(options.retention?.failed ?? "30d", "retention.failed"),
      cancelled: toMs(options.retention?.cancelled ?? "7d", "retention.cancelled"),
    };
    this.artifacts = options.artifacts ?? new LocalFolderStore();
    this.jobs = new JobService(() => this.backend(), this.clock, this.retention);
    this.#inline = this.mode === "inline" ? new InlineRunner(this) : undefined;
  }

  /**
   * The opened backend. Opening is lazy; a URL that cannot be opened rejects with BackendOpenError,
   * and after close() every call rejects with ClosedError (a wait still pending then ends, instead
   * of opening a new connection that nothing would close).
   */
  backend(): Promise<Backend> {
    if (this.#closed) return Promise.reject(new ClosedError());
    if (!this.#backend) {
      const opening = this.#given ? Promise.resolve(this.#given) : openBackend(this.url);
      this.#backend = opening;
      if (!this.#given) {
        opening.then((backend) => {
          if (this.#backend === opening && backend.capabilities.sharedAcrossProcesses) this.#counted(backend);
        }, () => {});
      }
      // A failed open is not kept: the next call tries again (the database may still be starting,
      // or was down for a moment), instead of the instance failing for the rest of its life.
      opening.catch(() => {
        if (this.#backend === opening) this.#backend = undefined;
      });
    }
    return this.#backend;
  }

  #counted(backend: Backend): void {
    openInstances.add(this);
    if (openInstances.size < MANY_INSTANCES || warnedOfMany) return;
    warnedOfMany = true;
    process.emitWarning(
      `${openInstances.size} Offload instances have a ${backend.name} backend open at once in this process, each with connections of its own until close(). ` +
        "Make one Offload per process (at module level) and share it, rather than one per request; or close() each one when done.",
      { code: "OFFLOAD_MANY_INSTANCES" },
    );
  }

  /** Defines a task. With a Standard Schema (zod, valibot, ...) the payload is checked at enqueue. */
  task<S extends StandardSchemaV1, R>(definition: TaskDefinitionWithSchema<S, R>): Task<NonNullable<S["~standard"]["types"]>["input"], Awaited<R>>;
  task<P, R>(definition: TaskDefinition<P, R>): Task<P, Awaited<R>>;
  task(definition: TaskDefinition<unknown, unknown> | TaskDefinitionWithSchema<StandardSchemaV1, unknown>): Task<unknown, unknown> {
    const { task, registered } = defineTask(this, definition, this.#inline);
    // Binds ctx.artifacts to this instance's store, whichever worker or inline runner runs the job.
    const bound = (payload: unknown, ctx: Parameters<typeof registered.run>[1]): Promise<unknown> =>
      registered.run(payload, { ...ctx, artifacts: jobArtifacts(() => this.artifacts, ctx.job.id) });
    this.registry.add({ ...registered, run: bound });
    return task;
  }

  /** A handle on any job by id. */
  job<R = unknown>(id: string): JobHandle<R> {
    return new JobHandle<R>(id, this.jobs);
  }

  /** A worker over this instance's tasks. Call start(); stop() hands active jobs back. */
  worker(options: WorkerOptions = {}): Worker {
    const worker = new Worker(
      {
        backend: () => this.backend(), registry: this.registry, clock: this.clock, maxResultBytes: this.maxResultBytes, retention: this.retention,
        // A stopped worker cannot start again, and close() has nothing left to wait for: kept, every
        // worker an app ever made (one per test, one per reconfiguration) stayed alive with it.
        onStopped: (stopped) => this.#workers.delete(stopped),
      },
      options,
    );
    this.#workers.add(worker);
    return worker;
  }

  /** Stops this instance's workers gracefully (`grace`: as in worker.stop) and closes the backend. */
  async close(options: { grace?: Duration } = {}): Promise<void> {
    await Promise.all([...this.#workers].map((w) => w.stop(options)));
    this.#closed = true;
    this.jobs.closed(); // pending waits read once more and reject with ClosedError
    openInstances.delete(this);
    // A backend passed in as an object belongs to the caller, who closes it.
    if (this.#backend && !this.#given) await (await this.#backend.catch(() => undefined))?.close();
    this.#backend = undefined;
  }
}

/** A size limit: NaN would turn the check off and a negative one refuse every job, both silently. */
function byteLimit(what: string, given: number | undefined): number {
  if (given === undefined) return DEFAULT_MAX_PAYLOAD_BYTES;
  if (given !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(given) && given >= 1)) {
    throw new ConfigError(`${what} must be a whole number of bytes ≥ 1, got ${String(given)}`);
  }
  return given;
}

/** Enough of the port to be one: what Offload calls first on a backend it is given. */
function isBackend(value: unknown): value is Backend {
  const b = value as Partial<Record<keyof Backend, unknown>> | null;
  return typeof b === "object" && b !== null && typeof b.name === "string" && typeof b.enqueue === "function" && typeof b.claim === "function" && typeof b.getJob === "function";
}
