// What the app's calls (enqueue, reads, waits) throw when the server is the problem: a
// BackendUnavailableError with the driver's error as its cause, so a web route can answer 503
// without knowing each driver's errors. A worker's `error` event says the same. Inside, workers
// keep the driver's errors: they judge them themselves (what to send again, when to back off).
import { BackendUnavailableError, OffloadError } from "../core/errors.ts";
import type { Backend } from "./backend.ts";

/** `error` as the app's caller sees it: the backend's name and its judgement are all it takes. */
export function forCaller(backend: Pick<Backend, "name" | "unavailable">, error: unknown): unknown {
  if (error instanceof OffloadError) return error;
  return backend.unavailable?.(error) === true ? new BackendUnavailableError(backend.name, error) : error;
}

/** `call(backend)`, whose server-side failures reach the caller as forCaller() says. */
export async function callForCaller<T>(backend: Backend, call: (backend: Backend) => Promise<T>): Promise<T> {
  try {
    return await call(backend);
  } catch (error) {
    throw forCaller(backend, error);
  }
}
