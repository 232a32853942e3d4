// Every error Offload raises itself is an OffloadError with a stable `code`; callers branch on the
// class or the code, never on message text. Backend status codes become these in
// backend/status.ts. A server that cannot be reached, or cannot take a call now (full, overloaded,
// read-only in a failover), is a BackendUnavailableError for the app's calls (enqueue, reads,
// waits), with the driver's error as its `cause`, once the lost-replies resends are spent; any
// other error of the server's passes through as the driver's own (README, "Errors").

export type ErrorCode =
  | "CONFIG"
  | "VALIDATION"
  | "NOT_SERIALIZABLE"
  | "PAYLOAD_TOO_LARGE"
  | "BACKEND_OPEN"
  | "BACKEND_UNAVAILABLE"
  | "JOB_NOT_FOUND"
  | "INVALID_STATE"
  | "LEASE_LOST"
  | "JOB_FAILED"
  | "JOB_CANCELLED"
  | "WAIT_TIMEOUT"
  | "UNKNOWN_TASK"
  | "DUPLICATE_TASK"
  | "TASK_TIMEOUT"
  | "CLOSED";

export class OffloadError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ConfigError extends OffloadError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CONFIG", message, options);
  }
}

/**
 * A PostgreSQL schema without Offload's tables, or with older ones than this code's: `offload
 * migrate` cures it. Still a ConfigError (code CONFIG) to the app, but a handler that meets it is
 * retried like other failures, where a plain ConfigError fails its job at once: mid-deploy, new
 * code can run before the migration does, and its jobs must outlast that window.
 */
export class SchemaNotMigratedError extends ConfigError {
  readonly schema: string;
  constructor(schema: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.schema = schema;
  }
}

export interface ValidationIssue {
  /** Dotted path of the offending field, "" for the payload itself. */
  readonly path: string;
  readonly message: string;
}

/** The payload did not pass the task's schema. Nothing was stored. */
export class ValidationError extends OffloadError {
  readonly task: string;
  readonly issues: readonly ValidationIssue[];
  /** Which payload of an enqueueMany batch failed (from 0); undefined for a single enqueue. */
  readonly index: number | undefined;
  constructor(task: string, issues: readonly ValidationIssue[], index?: number) {
    const list = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
    super("VALIDATION", `invalid payload${index === undefined ? "" : ` [${index}] of the batch`} for task ${task}: ${list}`);
    this.task = task;
    this.issues = issues;
    this.index = index;
  }
}

/** A value cannot be stored as JSON (function, BigInt, symbol, cycle...). Nothing was stored. */
export class NotSerializableError extends OffloadError {
  readonly path: string;
  constructor(what: string, path: string, reason: string) {
    super("NOT_SERIALIZABLE", `${what} is not JSON-serializable at ${path || "(root)"}: ${reason}`);
    this.path = path;
  }
}

export class PayloadTooLargeError extends OffloadError {
  readonly bytes: number;
  readonly limit: number;
  constructor(what: string, bytes: number, limit: number) {
    super("PAYLOAD_TOO_LARGE", `${what} is ${bytes} bytes, over the limit of ${limit} bytes`);
    this.bytes = bytes;
    this.limit = limit;
  }
}

export class BackendOpenError extends OffloadError {
  /** The backend URL with its password replaced by `***`: error messages end up in logs. */
  readonly url: string;
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    const shown = withoutPassword(url);
    super("BACKEND_OPEN", `cannot open backend ${shown}: ${reason}`, options);
    this.url = shown;
  }
}

/**
 * The backend's server could not be reached, or could not take the call now: full (Redis OOM,
 * PostgreSQL out of disk or connections), overloaded (a statement or lock timeout), read-only or
 * restarting in a failover. Nothing is wrong with the call itself: try it again later (a web route
 * answers 503). `cause` is the driver's error. An enqueue whose reply was lost may have been
 * stored (the cause is then a lost reply or a closed connection): give it a `key`, and enqueuing
 * it again is safe.
 */
export class BackendUnavailableError extends OffloadError {
  /** The backend's name: "redis", "postgres"… */
  readonly backend: string;
  constructor(backend: string, cause: unknown) {
    super("BACKEND_UNAVAILABLE", `the ${backend} backend is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.backend = backend;
  }
}

/**
 * `scheme://user:secret@host…` → `scheme://user:***@host…`; also `?password=` and
 * `?sentinelPassword=`, and the password of a URL inside `?listenUrl=` (PostgreSQL's direct
 * connection for LISTEN, percent-encoded or not).
 */
export function withoutPassword(url: string): string {
  // The userinfo ends at the authority's last "@" (as URL parsers read it): a password may hold "@".
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^/?#]*@/i, "$1***@")
    .replace(/([?&](?:password|sentinelPassword)=)[^&#]*/gi, "$1***")
    .replace(/([?&]listenUrl=)([^&#]*)/gi, (_, name: string, value: string) => `${name}${encodeURIComponent(withoutPassword(decodedOrAsIs(value)))}`);
}

function decodedOrAsIs(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export class JobNotFoundError extends OffloadError {
  readonly jobId: string;
  constructor(jobId: string) {
    super("JOB_NOT_FOUND", `job ${jobId} not found`);
    this.jobId = jobId;
  }
}

export class InvalidStateError extends OffloadError {
  readonly jobId: string;
  readonly state: string;
  constructor(jobId: string, state: string, action: string) {
    super("INVALID_STATE", `cannot ${action} job ${jobId}: it is ${state}`);
    this.jobId = jobId;
    this.state = state;
  }
}

export class LeaseLostError extends OffloadError {
  readonly jobId: string;
  constructor(jobId: string) {
    super("LEASE_LOST", `lease on job ${jobId} was lost; its outcome was not recorded`);
    this.jobId = jobId;
  }
}

/** Thrown by `job.result()` for a job that ended `failed`; `cause` is the last attempt's error. */
export class JobFailedError extends OffloadError {
  readonly jobId: string;
  constructor(jobId: string, message: string, cause: unknown) {
    super("JOB_FAILED", `job ${jobId} failed: ${message}`, { cause });
    this.jobId = jobId;
  }
}

export class JobCancelledError extends OffloadError {
  readonly jobId: string;
  constructor(jobId: string) {
    super("JOB_CANCELLED", `job ${jobId} was cancelled`);
    this.jobId = jobId;
  }
}

export class WaitTimeoutError extends OffloadError {
  constructor(what: string, ms: number) {
    super("WAIT_TIMEOUT", `timed out after ${ms} ms waiting for ${what}`);
  }
}

export class UnknownTaskError extends OffloadError {
  readonly task: string;
  constructor(task: string, known: readonly string[]) {
    super("UNKNOWN_TASK", `no task named ${JSON.stringify(task)} is registered in this worker (known: ${known.join(", ") || "none"})`);
    this.task = task;
  }
}

export class TaskTimeoutError extends OffloadError {
  constructor(task: string, ms: number) {
    super("TASK_TIMEOUT", `task ${task} timed out after ${ms} ms`);
  }
}

/**
 * The Offload instance was closed: it opens no backend again (make a new one instead). Also what
 * a wait ends with when the backend it reads was closed under it by its owner.
 */
export class ClosedError extends OffloadError {
  constructor(message = "this Offload instance is closed") {
    super("CLOSED", message);
  }
}

/** Turns anything caught into an Error, so the rest of the code handles one type. */
export function toError(caught: unknown): Error {
  if (caught instanceof Error) return caught;
  if (typeof caught === "string") return new Error(caught);
  try {
    return new Error(JSON.stringify(caught));
  } catch {
    return new Error(String(caught));
  }
}
