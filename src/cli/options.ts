// Parsing and checking CLI option values; a bad value is a ConfigError naming the flag.
import { positiveMs, toMs } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { nearMiss } from "../core/near-miss.ts";
import { isJobState, type JobState } from "../core/job.ts";
import { JOB_STATES } from "../core/job.ts";

export function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a whole number ≥ 1, got ${JSON.stringify(text)}`);
  return n;
}

export function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

export function jobState(text: string | undefined): JobState | undefined {
  if (text === undefined) return undefined;
  if (!isJobState(text)) {
    const guess = nearMiss(text, JOB_STATES);
    throw new ConfigError(`--state must be one of ${JOB_STATES.join(", ")}, got ${JSON.stringify(text)}${guess ? ` (did you mean ${guess}?)` : ""}`);
  }
  return text;
}

export function instant(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new ConfigError(`${flag} must be a date/time like 2026-11-22T10:00:00Z, got ${JSON.stringify(text)}`);
  return at;
}

/**
 * Milliseconds in a duration flag ("15s"), checked here so that the message names the flag. The
 * unit is required: `--lease 30` read as 30 ms (what a bare number means in code) started a relay
 * or worker whose leases ran out while its jobs ran; someone who typed it meant seconds.
 */
export function duration(text: string, flag: string, options: { positive?: boolean } = {}): number {
  const ms = toMs(text, flag); // a string without a unit is refused here
  if (options.positive) return positiveMs(ms, flag);
  return ms;
}
