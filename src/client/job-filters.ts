// The read and bulk-write requests of the JobService, checked before they reach a backend. Each
// backend read a bad value its own way: a NaN or a misspelt replay filter replayed every failed
// job, a negative limit listed everything on SQLite and nothing on Redis, and the rest failed
// as driver errors.
import { ConfigError } from "../core/errors.ts";
import { isJobState } from "../core/job.ts";
import { describe, refuseUnknownOptions } from "../core/names.ts";
import type { ListFilter, ReplayFilter } from "../backend/backend.ts";

/** The most jobs or events one read returns: a page, not an export. */
export const MAX_PAGE = 100_000;

function checkObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${what} must be an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ConfigError(`${what} must be a string, got ${describe(value)}`);
  return value;
}

function pageSize(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_PAGE) {
    throw new ConfigError(`${what} must be an integer from 1 to ${MAX_PAGE.toLocaleString("en-US")}, got ${String(value)}`);
  }
  return value;
}

export function listFilter(given: unknown): ListFilter {
  const filter = checkObject(given === undefined ? {} : given, "the list filter");
  const state = filter["state"];
  if (state !== undefined && (typeof state !== "string" || !isJobState(state))) {
    throw new ConfigError(`state must be a job state (scheduled, queued, active, retrying, succeeded, failed, cancelled), got ${JSON.stringify(state) ?? describe(state)}`);
  }
  return {
    state,
    queue: optionalString(filter["queue"], "queue"),
    task: optionalString(filter["task"], "task"),
    before: optionalString(filter["before"], "before"),
    limit: pageSize(filter["limit"], 50, "limit"),
  };
}

const REPLAY_FIELDS = ["queue", "task", "since", "until"] as const;

/** An instant as epoch ms: a number, a Date, or a date-time string, valid. */
function optionalInstant(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : typeof value === "string" ? Date.parse(value) : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new ConfigError(`${what} must be a valid Date or epoch ms, got ${String(value)}`);
  return ms;
}

/**
 * Replay changes every failed job its filter matches, so a filter that does not say what it means
 * is refused, a misspelt field included: ignored, it would have widened the replay to every job.
 */
export function replayFilter(given: unknown): ReplayFilter {
  // replay() is every failed job; replay(null) is a mistake, not a second way of saying so.
  const filter = checkObject(given === undefined ? {} : given, "the replay filter");
  refuseUnknownOptions(filter, REPLAY_FIELDS, "the replay filter", "field");
  return {
    queue: optionalString(filter["queue"], "queue"),
    task: optionalString(filter["task"], "task"),
    since: optionalInstant(filter["since"], "since"),
    until: optionalInstant(filter["until"], "until"),
  };
}

export interface EventsRequest {
  readonly jobId: string | undefined;
  readonly afterId: number;
  readonly limit: number;
}

export function eventsRequest(given: unknown): EventsRequest {
  const request = checkObject(given, "the events request");
  const afterId = request["afterId"] ?? 0;
  if (typeof afterId !== "number" || !Number.isSafeInteger(afterId) || afterId < 0) {
    throw new ConfigError(`afterId must be an event id (an integer ≥ 0), got ${String(afterId)}`);
  }
  return { jobId: optionalString(request["jobId"], "jobId"), afterId, limit: pageSize(request["limit"], 100, "limit") };
}
