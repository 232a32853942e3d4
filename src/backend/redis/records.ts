// Replies read back from Redis are checked as they become JobRecords and JobEvents: a hash that
// does not fit is a corrupted store, and we say so instead of passing `unknown` on as typed.
import type { JobEvent } from "../backend.ts";
import { decodeJson } from "../../core/json.ts";
import { type JobFieldReader, attemptErrors, eventData, isJobEventType, jobRecordFrom } from "../decode.ts";
import type { JobRecord } from "../../core/job.ts";

/** A job hash's fields; absent ones are undefined. */
export type Fields = Readonly<Record<string, string | undefined>>;

/** A flat name/value array (lib.lua record, or HGETALL) → field map. */
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

/** Absent, or blanked by a transition that saves a call by writing "" instead of deleting. */
function optionalInt(f: Fields, name: string): number | undefined {
  const value = f[name];
  return value === undefined || value === "" ? undefined : Number(value);
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

/** What claim.lua reads of each job it claims (attempt first: the script counts it up). */
export const CLAIM_FIELDS = [
  "attempt", "id", "task", "queue", "payload", "priority", "run_at", "max_attempts", "key", "owner",
  "created_at", "errors", "progress", "progress_message",
] as const;

/** Separates the packed fields of a claim reply (claim.lua); no UTF-8 text holds this byte. */
const FIELD_SEPARATOR = 0xff;
/** A packed field that is absent from the hash. */
const ABSENT = 0xfe;

/**
 * The record of a claimed job: the CLAIM_FIELDS values as they were before the claim (packed
 * into one Buffer by claim.lua), with the claim's own changes applied (claim.lua makes the same
 * changes in the hash).
 */
export function claimedRecord(packed: unknown, claim: { token: string; leaseUntil: number; worker: string; now: number }): JobRecord {
  if (!Buffer.isBuffer(packed)) throw new Error("redis claim: malformed reply");
  // Properties are added in one fixed order, so every row shares one object shape.
  const row: Record<string, string | undefined> = {};
  let start = 0;
  for (let i = 0; i < CLAIM_FIELDS.length; i++) {
    if (start > packed.length) throw new Error("redis claim: malformed reply (too few fields)");
    let end = packed.indexOf(FIELD_SEPARATOR, start);
    if (end < 0) end = packed.length;
    const absent = end === start + 1 && packed[start] === ABSENT;
    row[CLAIM_FIELDS[i] as string] = absent ? undefined : packed.toString("utf8", start, end);
    start = end + 1;
  }
  if (start !== packed.length + 1) throw new Error("redis claim: malformed reply (too many fields)");
  const now = String(claim.now);
  row["state"] = "active";
  row["attempt"] = String(Number(row["attempt"]) + 1);
  row["token"] = claim.token;
  row["lease_until"] = String(claim.leaseUntil);
  row["worker"] = claim.worker;
  row["started_at"] = now;
  row["cancel"] = "0";
  return toJobRecord(row);
}

/** An event from its id, job id and body "type \t at \t json" (see lib.lua event_fields). */
function toJobEvent(id: number, jobId: string, body: string): JobEvent {
  const first = body.indexOf("\t");
  const second = body.indexOf("\t", first + 1);
  const type = body.slice(0, first);
  if (first < 0 || second < 0 || !Number.isSafeInteger(id) || !isJobEventType(type)) {
    throw new Error(`redis event ${id}: malformed entry ${body.slice(0, 80)}`);
  }
  const data = decodeJson(body.slice(second + 1));
  return {
    id,
    jobId,
    type,
    data: eventData(data),
    at: Number(body.slice(first + 1, second)),
  };
}

/** Field name prefix of the events kept in a job's hash ("~<event id>"). */
const EVENT_FIELD = "~";

/**
 * The names of a job's event fields after `afterId`, oldest first, at most `limit`: which fields
 * to read. A job's hash holds all its events (a job that logs a lot, tens of thousands); reading
 * the whole hash for every page a stream asks for made following such a job quadratic.
 */
export function eventFieldsAfter(names: readonly string[], afterId: number, limit: number): string[] {
  const found: { id: number; name: string }[] = [];
  for (const name of names) {
    if (!name.startsWith(EVENT_FIELD)) continue;
    const id = Number(name.slice(EVENT_FIELD.length));
    if (id > afterId) found.push({ id, name });
  }
  return found.sort((a, b) => a.id - b.id).slice(0, limit).map((f) => f.name);
}

/** The events of `names` (from eventFieldsAfter) with their bodies (HMGET); gone ones are skipped. */
export function jobEvents(jobId: string, names: readonly string[], bodies: readonly (string | null)[]): JobEvent[] {
  const events: JobEvent[] = [];
  names.forEach((name, i) => {
    const body = bodies[i];
    if (body !== null && body !== undefined) events.push(toJobEvent(Number(name.slice(EVENT_FIELD.length)), jobId, body));
  });
  return events;
}

/**
 * Events of global feed entries (XRANGE replies), after `afterId`. An entry holds all events of
 * one script as lines "<event id> \t <job id> \t <body>" joined by "\n" (see lib.lua flush);
 * an entry of the first layout holds one such line, so it reads the same way.
 */
export function feedEvents(entries: readonly [string, readonly string[]][], afterId: number, limit: number): JobEvent[] {
  const events: JobEvent[] = [];
  for (const [, fields] of entries) {
    for (let f = 1; f < fields.length; f += 2) {
      for (const line of (fields[f] ?? "").split("\n")) {
        if (events.length >= limit) return events;
        const first = line.indexOf("\t");
        const second = line.indexOf("\t", first + 1);
        const id = Number(line.slice(0, first));
        if (first < 0 || second < 0 || !(id > afterId)) continue;
        events.push(toJobEvent(id, line.slice(first + 1, second), line.slice(second + 1)));
      }
    }
  }
  return events;
}
