// Replies read back from Redis are checked as they become JobRecords and JobEvents: a hash that
// does not fit is a corrupted store, and we say so instead of passing `unknown` on as typed.
import type { NewJob, JobEvent, JobEventType } from "../backend.ts";
import { decodeJson } from "../../core/json.ts";
import { type JobFieldReader, attemptErrors, jobRecordFrom } from "../decode.ts";
import type { JobRecord } from "../../core/job.ts";

export type Fields = Readonly<Record<string, string>>;

/** A flat HGETALL array (as Lua returns it) → field map. */
export function toFields(reply: unknown): Fields {
  if (!Array.isArray(reply)) throw new Error(`redis: expected a field array, got ${typeof reply}`);
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  return fields;
}

function text(f: Fields, name: string): string {
  const value = f[name];
  if (value === undefined) throw new Error(`redis job hash: field ${name} is missing`);
  return value;
}

function int(f: Fields, name: string): number {
  const value = Number(text(f, name));
  if (!Number.isFinite(value)) throw new Error(`redis job hash: field ${name} is not a number`);
  return value;
}

function optionalInt(f: Fields, name: string): number | undefined {
  const value = f[name];
  return value === undefined ? undefined : Number(value);
}


const REDIS_FIELDS: JobFieldReader<Fields> = {
  where: "redis job hash",
  text,
  optionalText: (f, name) => f[name],
  int,
  optionalNumber: optionalInt,
  json: (f, name) => decodeJson(f[name]),
  cancelRequested: (f) => f["cancel"] === "1",
  errors: (f) => attemptErrors(decodeJson(f["errors"])),
};

export function toJobRecord(f: Fields): JobRecord {
  return jobRecordFrom(f, REDIS_FIELDS);
}

/** The record of a job the enqueue script has just inserted, without reading it back. */
export function insertedRecord(job: NewJob, now: number): JobRecord {
  return {
    id: job.id, task: job.task, queue: job.queue, state: job.runAt > now ? "scheduled" : "queued",
    payload: decodeJson(job.payloadJson), priority: job.priority, runAt: job.runAt, attempt: 0,
    maxAttempts: job.maxAttempts, key: job.key, worker: undefined, leaseUntil: undefined,
    cancelRequested: false, progress: undefined, progressMessage: undefined, result: undefined,
    errors: [], owner: job.owner, createdAt: now, startedAt: undefined, finishedAt: undefined, expiresAt: undefined,
  };
}

const EVENT_TYPES: readonly string[] = ["state", "progress", "log"];

/** An event member "id \t jobId \t type \t at \t json" (see lib.lua add_event). */
export function toJobEvent(member: string): JobEvent {
  const parts = member.split("\t");
  const [id, jobId, type, at] = parts;
  if (parts.length < 5 || id === undefined || jobId === undefined || type === undefined || at === undefined || !EVENT_TYPES.includes(type)) {
    throw new Error(`redis event: malformed entry ${member.slice(0, 80)}`);
  }
  const data = decodeJson(parts.slice(4).join("\t"));
  return {
    id: Number(id),
    jobId,
    type: type as JobEventType,
    data: typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {},
    at: Number(at),
  };
}

/** The event id at the head of a member, without parsing the rest. */
export function eventId(member: string): number {
  return Number(member.slice(0, member.indexOf("\t")));
}
