// Durations as users write them: a number of milliseconds, or "250ms", "2s", "10m", "1h", "7d".
import { ConfigError } from "./errors.ts";

export type DurationUnit = "ms" | "s" | "m" | "h" | "d";
export type Duration = number | `${number}${DurationUnit}`;

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Milliseconds in `input`; throws ConfigError naming `what` when it is not a duration. */
export function toMs(input: Duration | string, what = "duration"): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new ConfigError(`${what} must be a non-negative number of ms, got ${input}`);
    return wholeMs(input, what, String(input));
  }
  // For plain JavaScript callers: null, a Date or an object here failed on .trim() as a TypeError.
  if (typeof input !== "string") throw new ConfigError(`${what} must be a number of ms or a string like "2s", got ${input === null ? "null" : typeof input}`);
  const match = PATTERN.exec(input.trim());
  if (!match) throw new ConfigError(`${what} must look like "500ms", "2s", "10m", "1h" or "7d", got ${JSON.stringify(input)}`);
  return wholeMs(Number(match[1]) * UNIT_MS[match[2] as DurationUnit], what, JSON.stringify(input));
}

/**
 * Whole ms, as every backend stores times (a PostgreSQL bigint refuses 1.5), and small enough to
 * add to a time: "999…9d" would otherwise become Infinity.
 */
function wholeMs(ms: number, what: string, shown: string): number {
  const whole = Math.round(ms);
  if (!Number.isSafeInteger(whole)) throw new ConfigError(`${what} is too long, got ${shown}`);
  return whole;
}

/**
 * A duration that must be longer than 0 (a timeout, a loop period: at 0 a loop would spin), given
 * in code or as a URL or CLI value, where digits alone are milliseconds ("2500").
 */
export function positiveMs(input: Duration | string, what: string): number {
  const ms = toMs(typeof input === "string" && /^\d+$/.test(input.trim()) ? Number(input) : input, what);
  if (ms <= 0) throw new ConfigError(`${what} must be longer than 0, got ${JSON.stringify(input)}`);
  return ms;
}

/** The largest |epoch ms| a JavaScript Date can show: a run time past it broke every view of the job. */
export const MAX_TIME_MS = 8.64e15;
