// Names and labels that every backend must store exactly as given (queue names, task names,
// keys, owners, worker ids), checked in one place for the client and the worker.
import { ConfigError } from "./errors.ts";
import { nearMiss } from "./near-miss.ts";

/** Queue names also form Redis hash tags and URL segments: keep them plain. */
const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * Text that every backend stores as given: no U+0000 (PostgreSQL text cannot hold it) and no lone
 * UTF-16 surrogate (half an emoji, from a string cut in the middle), which UTF-8 cannot encode:
 * stored as U+FFFD, two different keys became one key, and a task name no longer matched itself.
 */
export function isStorableText(value: string): boolean {
  return !UNSTORABLE_TEXT.test(value);
}
/** U+0000, or a lone surrogate (one not followed, or not preceded, by its other half). */
export const UNSTORABLE_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A task name or worker id: 1-200 characters of storable text. */
export function isName(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= 200 && isStorableText(value);
}

export function checkQueueName(queue: unknown): string {
  // A string first: the pattern would test String(42), and SQLite store the number as "42.0".
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new ConfigError(`queue name ${typeof queue === "string" ? JSON.stringify(queue) : `(${describe(queue)})`} must be a string of 1-100 of A-Z a-z 0-9 _ . : -`);
  }
  return queue;
}

/** What a wrong value is, for messages: "null", "an array", or its typeof. */
export function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/**
 * For plain JavaScript callers, and option objects built elsewhere (TypeScript checks only object
 * literals): a misspelt option (`dealy`, `concurency`) was ignored, and the job ran at once or
 * the worker ran with its defaults, without a word. A field set to undefined is no field.
 */
export function refuseUnknownOptions(given: object, known: readonly string[], what: string, noun = "option"): void {
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || known.includes(key)) continue;
    const guess = nearMiss(key, known);
    throw new ConfigError(`${what} has no ${noun} ${JSON.stringify(key)}${guess ? ` (did you mean ${guess}?)` : ""} (it takes ${known.join(", ")})`);
  }
}
