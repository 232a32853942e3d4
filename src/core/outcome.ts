// What a handler's run can come to, as one closed union. The executor turns whatever the handler
// returned or threw into an Outcome before acknowledging, so acknowledgement has a single switch.
import { type Duration, toMs } from "./duration.ts";

/** Throw to ask for another attempt after a given delay (instead of the task's backoff). */
export class Retry extends Error {
  readonly delayMs: number | undefined;
  constructor(options: { in?: Duration; reason?: string } = {}) {
    super(options.reason ?? "retry requested");
    this.name = "Retry";
    this.delayMs = options.in === undefined ? undefined : toMs(options.in, "Retry in");
  }
}

/** Throw to fail the job at once, with no further attempts (it goes to `failed`). */
export class Permanent extends Error {
  constructor(cause: unknown) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(message, { cause });
    this.name = "Permanent";
    if (cause instanceof Error && cause.stack) this.stack = cause.stack;
  }
}

export type Outcome =
  | { readonly kind: "succeeded"; readonly result: unknown }
  /** retryInMs undefined means: use the task's backoff. */
  | { readonly kind: "retry"; readonly error: Error; readonly retryInMs: number | undefined }
  | { readonly kind: "permanent"; readonly error: Error }
  | { readonly kind: "cancelled" }
  /** The lease was lost or the worker is shutting down: nothing may be recorded as the outcome. */
  | { readonly kind: "abandoned"; readonly reason: "lease-lost" | "shutdown" };
