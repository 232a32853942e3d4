// Retry policy: how many attempts a job gets and how long to wait between them.
// Exponential backoff with full jitter (delay drawn uniformly from [0, cap]) spreads a burst of
// failures out instead of retrying them in lockstep against a struggling dependency.
import { ConfigError } from "./errors.ts";
import { type Duration, toMs } from "./duration.ts";
import { refuseUnknownOptions } from "./names.ts";

export interface RetryOptions {
  /** Total attempts including the first. Default 5. */
  readonly attempts?: number;
  readonly backoff?: "exponential" | "fixed";
  /** First delay (exponential) or every delay (fixed). Default "1s". */
  readonly base?: Duration;
  /** Upper bound on one delay. Default "1h". */
  readonly max?: Duration;
  /** Full jitter. Default true. */
  readonly jitter?: boolean;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly backoff: "exponential" | "fixed";
  readonly baseMs: number;
  readonly maxMs: number;
  readonly jitter: boolean;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, backoff: "exponential", baseMs: 1_000, maxMs: 3_600_000, jitter: true };

const RETRY_OPTIONS = ["attempts", "backoff", "base", "max", "jitter"] as const;

export function retryPolicy(given: RetryOptions | undefined | null): RetryPolicy {
  // For plain JavaScript callers: `retry: 5` or a misspelt field ({ attemps: 3 }) gave the
  // defaults without a word. null is none, as undefined is.
  if (given != null && (typeof given !== "object" || Array.isArray(given))) {
    throw new ConfigError(`retry must be an object like { attempts: 5 }, got ${Array.isArray(given) ? "an array" : typeof given}`);
  }
  refuseUnknownOptions(given ?? {}, RETRY_OPTIONS, "retry");
  const options = given ?? undefined;
  const attempts = checkAttempts(options?.attempts ?? DEFAULT_RETRY.attempts, "retry.attempts");
  // Checked for plain JavaScript callers: "linear" would otherwise back off exponentially, silently.
  const backoff: unknown = options?.backoff ?? DEFAULT_RETRY.backoff;
  if (backoff !== "exponential" && backoff !== "fixed") throw new ConfigError(`retry.backoff must be "exponential" or "fixed", got ${JSON.stringify(backoff)}`);
  const jitter: unknown = options?.jitter ?? DEFAULT_RETRY.jitter;
  if (typeof jitter !== "boolean") throw new ConfigError(`retry.jitter must be true or false, got ${JSON.stringify(jitter)}`);
  return {
    attempts,
    backoff,
    baseMs: options?.base === undefined ? DEFAULT_RETRY.baseMs : toMs(options.base, "retry.base"),
    maxMs: options?.max === undefined ? DEFAULT_RETRY.maxMs : toMs(options.max, "retry.max"),
    jitter,
  };
}

/** Delay before the attempt after `attempt` (1-based) failed. `random` is injectable for tests. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const cap = policy.backoff === "fixed" ? policy.baseMs : Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const bounded = Math.min(cap, policy.maxMs);
  return Math.round(policy.jitter ? random() * bounded : bounded);
}

/**
 * The most attempts a job can have: every backend stores the count as a 32-bit integer
 * (PostgreSQL's `integer`). Nobody reaches it; "retry for ever" is this number, said plainly.
 */
export const MAX_ATTEMPTS = 2_147_483_647;

export function checkAttempts(attempts: number, what: string): number {
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_ATTEMPTS) {
    throw new ConfigError(`${what} must be an integer from 1 to ${MAX_ATTEMPTS}, got ${attempts}`);
  }
  return attempts;
}
