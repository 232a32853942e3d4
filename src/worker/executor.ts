// Running one claimed job is a straight pipeline: resolve task → start timeout → run → normalize
// the outcome. The executor never touches storage; the caller acknowledges the outcome.
import type { Clock } from "../core/clock.ts";
import { TaskTimeoutError, toError } from "../core/errors.ts";
import type { ClaimedJob } from "../core/job.ts";
import { encodeJson } from "../core/json.ts";
import { type Outcome, Permanent, Retry } from "../core/outcome.ts";
import type { JobContext, RegisteredTask } from "../client/task.ts";
import { CancelRequested, LeaseLost, ShuttingDown } from "./abort-reasons.ts";
import type { JobControl } from "./job-control.ts";
import type { TaskRegistry } from "./task-registry.ts";

/** Once a timeout fired, how long a handler that ignores its signal gets before we stop waiting. */
const HARD_STOP_GRACE_MS = 1_000;

export interface Execution {
  readonly outcome: Outcome;
  /** The JSON text of the result, when the outcome is `succeeded`. */
  readonly resultJson: string | undefined;
  readonly task: RegisteredTask | undefined;
}

export interface ExecutorDeps {
  readonly registry: TaskRegistry;
  readonly clock: Clock;
  readonly maxResultBytes: number;
}

/**
 * How long a job of an unknown task waits before its next attempt, times the attempt: with the
 * default 5 attempts, 30 s, 1, 1.5 and 2 min, five minutes for a deploy to finish.
 */
export const UNKNOWN_TASK_RETRY_MS = 30_000;

export async function execute(
  deps: ExecutorDeps,
  claimed: ClaimedJob,
  control: JobControl,
  makeContext: (signal: AbortSignal) => JobContext,
): Promise<Execution> {
  let task: RegisteredTask;
  try {
    task = deps.registry.resolve(claimed.job.task);
  } catch (error) {
    // A task this worker does not know: in a rolling deploy, a job of a new task that an old
    // worker claimed. Retried later (its attempts count), for a worker that knows it; failed at
    // once, every job of it would wait in the dead letter for a replay by hand.
    return { outcome: { kind: "retry", error: toError(error), retryInMs: UNKNOWN_TASK_RETRY_MS * claimed.job.attempt }, resultJson: undefined, task: undefined };
  }
  const stopTimer = startTimeout(deps.clock, task, control);
  const signal = control.signal;
  let result: unknown;
  try {
    result = await runUntilAborted(task, claimed, control, makeContext, deps.clock);
  } catch (caught) {
    return { outcome: normalizeFailure(task, signal, caught), resultJson: undefined, task };
  } finally {
    stopTimer();
  }
  if (isAbandoned(signal)) return { outcome: abandoned(signal), resultJson: undefined, task };
  // The handler returned, so whatever aborted its signal (a timeout, a cancel request) did not
  // end it: a result that cannot be stored fails the job as it would have without the abort. It
  // used to be judged under the abort's reason, so a timed-out run's unstorable result was
  // retried as a timeout, every attempt the same.
  try {
    const resultJson = encodeJson(result, `result of ${task.name}`, deps.maxResultBytes);
    return { outcome: { kind: "succeeded", result }, resultJson, task };
  } catch (error) {
    return { outcome: classifyError(task, error), resultJson: undefined, task };
  }
}

const NO_TIMER = (): void => {};

function startTimeout(clock: Clock, task: RegisteredTask, control: JobControl): () => void {
  if (task.timeoutMs === undefined) return NO_TIMER;
  const cancelTimer = new AbortController();
  clock.sleep(task.timeoutMs, cancelTimer.signal).then(
    () => control.abort(new TaskTimeoutError(task.name, task.timeoutMs ?? 0)),
    () => {}, // the job ended first
  );
  return () => cancelTimer.abort();
}

/** Runs the handler; once the job is aborted, waits at most a short grace for it to stop. */
function runUntilAborted(
  task: RegisteredTask,
  claimed: ClaimedJob,
  control: JobControl,
  makeContext: (signal: AbortSignal) => JobContext,
  clock: Clock,
): Promise<unknown> {
  const running = task.run(claimed.job.payload, makeContext(control.signal));
  return new Promise((resolve, reject) => {
    // Made only once the run is aborted (nothing per job on the hot path), and ended with the run:
    // a handler that stops when asked must not leave a 1 s timer behind it (a stopped worker's
    // process would stay alive for it; a fake clock would count it).
    let hardStop: AbortController | undefined;
    let settled = false;
    running.then(
      (value) => {
        settled = true;
        hardStop?.abort();
        resolve(value);
      },
      (error: unknown) => {
        settled = true;
        hardStop?.abort();
        reject(error);
      },
    );
    // Settling twice is a no-op: whichever of the handler and the hard stop comes first wins.
    control.onAbort(() => {
      // Aborted after its handler settled (a heartbeat that finds the lease of a run whose outcome
      // is being written already gone): nothing is left to stop. Armed then, the timer outlived the
      // run by a second, holding its context; on a fake clock it stayed a sleeper until time moved.
      if (settled) return;
      hardStop = new AbortController();
      clock.sleep(HARD_STOP_GRACE_MS, hardStop.signal).then(() => reject(control.signal.reason as Error), () => {});
    });
  });
}

function isAbandoned(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason instanceof LeaseLost || signal.reason instanceof ShuttingDown);
}

function abandoned(signal: AbortSignal): Outcome {
  return { kind: "abandoned", reason: signal.reason instanceof LeaseLost ? "lease-lost" : "shutdown" };
}

/** Every way a run can end besides success, as one Outcome. */
export function normalizeFailure(task: RegisteredTask, signal: AbortSignal, caught: unknown): Outcome {
  if (isAbandoned(signal)) return abandoned(signal);
  if (signal.aborted && signal.reason instanceof CancelRequested) return { kind: "cancelled" };
  if (signal.aborted && signal.reason instanceof TaskTimeoutError) return { kind: "retry", error: signal.reason, retryInMs: undefined };
  return classifyError(task, caught);
}

/** What a thrown value asks for, when no abort explains it. */
function classifyError(task: RegisteredTask, caught: unknown): Outcome {
  if (caught instanceof Retry) return { kind: "retry", error: caught, retryInMs: caught.delayMs };
  // Record the error the task wrapped, not the wrapper: operators want "SmtpError: mailbox full".
  if (caught instanceof Permanent) return { kind: "permanent", error: caught.cause instanceof Error ? caught.cause : caught };
  const error = toError(caught);
  // Errors about a value the code gave, which the same code gives again on every attempt: a
  // payload the worker's schema refuses, a result that cannot be stored, a call with bad options
  // (an enqueue with a tx on Redis, ctx.progress("0.7")). Matched by name, so SchemaNotMigratedError,
  // a ConfigError by class, is retried: the deploy's migration cures it.
  if (error.name === "ValidationError" || error.name === "NotSerializableError" || error.name === "PayloadTooLargeError" || error.name === "ConfigError") {
    return { kind: "permanent", error };
  }
  if (task.retryIf && !safeRetryIf(task.retryIf, error)) return { kind: "permanent", error };
  return { kind: "retry", error, retryInMs: undefined };
}

function safeRetryIf(retryIf: (error: Error) => boolean, error: Error): boolean {
  try {
    return retryIf(error);
  } catch {
    return true; // a broken predicate must not lose the job: retry as usual
  }
}
