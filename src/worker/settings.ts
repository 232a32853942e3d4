// Worker options with their defaults applied and checked once, at construction.
import { ConfigError } from "../core/errors.ts";
import { positiveMs, toMs } from "../core/duration.ts";
import { refuseUnknownOptions } from "../core/names.ts";
import type { WorkerOptions } from "./worker.ts";

export interface WorkerSettings {
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly pollMs: number;
  readonly shutdownGraceMs: number;
}

/** Every option of WorkerOptions, no more and no fewer (the compiler checks both ways). */
const WORKER_OPTIONS = Object.keys({
  queues: true, concurrency: true, lease: true, heartbeat: true, poll: true, shutdownGrace: true, id: true,
} satisfies Record<keyof WorkerOptions, true>);

/** More handlers than this in one process is a mistake, not a setting: each holds a lease. */
export const MAX_CONCURRENCY = 100_000;

export function workerSettings(options: WorkerOptions): WorkerSettings {
  if (typeof options !== "object" || options === null) throw new ConfigError(`worker options must be an object, got ${options === null ? "null" : typeof options}`);
  // `grace` is the CLI's flag and stop()'s option; here it is shutdownGrace.
  refuseUnknownOptions(options, WORKER_OPTIONS, "offload.worker()");
  const concurrency = options.concurrency ?? 10;
  // The ceiling is every backend's: a claim's limit is a 32-bit integer on PostgreSQL, and a worker
  // asking for 2^40 jobs was refused on every claim, for ever.
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new ConfigError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY.toLocaleString("en-US")}, got ${concurrency}`);
  }
  const leaseMs = toMs(options.lease ?? "15s", "lease");
  // Both are loop periods: at 0 ms the heartbeat or the idle claim loop would spin on the backend.
  const heartbeatMs = positiveMs(options.heartbeat ?? Math.max(1, Math.min(1_000, Math.floor(leaseMs / 3))), "heartbeat");
  if (heartbeatMs >= leaseMs) throw new ConfigError(`heartbeat (${heartbeatMs} ms) must be shorter than lease (${leaseMs} ms)`);
  return {
    concurrency,
    leaseMs,
    heartbeatMs,
    pollMs: positiveMs(options.poll ?? "1s", "poll"),
    shutdownGraceMs: toMs(options.shutdownGrace ?? "10s", "shutdownGrace"),
  };
}
