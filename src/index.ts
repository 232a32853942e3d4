// Offload's public API. Everything a user imports comes from here (and offload/testing).
export { Offload, type OffloadOptions } from "./client/offload.ts";
export type { Task, TaskDefinition, TaskDefinitionWithSchema, JobContext, EnqueueOptions } from "./client/task.ts";
export { JobHandle } from "./client/job-handle.ts";
export type { JobService, ReplayRequest } from "./client/job-service.ts";
export { Worker, type WorkerOptions, type WorkerEvent } from "./worker/worker.ts";
export { Retry, Permanent } from "./core/outcome.ts";
export type { JobState, JobRecord, AttemptError } from "./core/job.ts";
export { JOB_STATES } from "./core/job.ts";
export type { Duration } from "./core/duration.ts";
export type { RetryOptions } from "./core/backoff.ts";
export type { Clock } from "./core/clock.ts";
export type { StandardSchemaV1 } from "./core/schema.ts";
export * from "./core/errors.ts";
export type { Backend, QueueCounts, JobEvent, ReplayFilter } from "./backend/backend.ts";
export { openBackend, registerBackend } from "./backend/open.ts";
