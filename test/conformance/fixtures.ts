// Small builders shared by the conformance cases.
import type { Backend, NewJob } from "../../src/backend/backend.ts";
import type { AttemptError, ClaimedJob } from "../../src/core/job.ts";
import { uuidv7 } from "../../src/core/ids.ts";
import { BackendUnavailableError } from "../../src/core/errors.ts";

export const T0 = Date.UTC(2030, 0, 1);
export const LEASE = 10_000;

/** A fresh, empty, isolated backend (its own file, schema or key prefix). */
export type BackendFactory = () => Promise<Backend>;

/** Wraps a test body: opens a fresh backend, runs the body, closes the backend. */
export type UseBackend = (body: (backend: Backend) => Promise<void>) => () => Promise<void>;

export function newJob(overrides: Partial<NewJob> = {}): NewJob {
  return {
    id: uuidv7(T0),
    task: "t",
    queue: "q",
    payloadJson: JSON.stringify({ n: 1 }),
    priority: 0,
    runAt: T0,
    maxAttempts: 3,
    key: undefined,
    owner: undefined,
    ...overrides,
  };
}

export async function enqueueOne(backend: Backend, overrides: Partial<NewJob> = {}, now = T0): Promise<string> {
  const [result] = await backend.enqueue({ jobs: [newJob(overrides)], now });
  if (!result) throw new Error("no enqueue result");
  return result.job.id;
}

export async function claimOne(backend: Backend, now = T0, queues: string[] = ["q"], leaseMs = LEASE): Promise<ClaimedJob> {
  const [claimed] = await backend.claim({ queues, limit: 1, worker: "w1", leaseMs, now });
  if (!claimed) throw new Error(`nothing to claim at ${now - T0} ms`);
  return claimed;
}

export function attemptError(attempt: number, now = T0, message = "boom"): AttemptError {
  return { attempt, message, name: "Error", stack: `Error: ${message}\n    at test`, worker: "w1", at: now };
}

/** Resolves on the backend's next change signal. */
export function nextChange(backend: Backend): Promise<void> {
  return new Promise((resolve) => {
    const stop = backend.watch(() => {
      stop();
      resolve();
    });
  });
}

/**
 * The backend with some operations replaced, everything else passed through (bound to the real
 * one): to lose replies, refuse writes or hold a call at the port.
 */
export function replacing(backend: Backend, operations: Partial<Backend>): Backend {
  return new Proxy(backend, {
    get(target, prop) {
      if (Object.hasOwn(operations, prop)) return operations[prop as keyof Backend];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The driver's message of an error a worker reported: a backend with a server reports one it
 * judges an outage as BackendUnavailableError, the driver's error its cause; SQLite as it is.
 */
export function driverMessage(error: Error): string {
  return error instanceof BackendUnavailableError && error.cause instanceof Error ? error.cause.message : error.message;
}
