// A handler that keeps the event loop busy (CPU-bound work run inline: a big JSON parse, image
// resizing, a synchronous PDF build) holds up the worker's heartbeats with everything else. Past
// the lease, another worker's rescue takes the job and runs it again, and this run's outcome is
// refused (fencing). Nothing is lost, but a job that runs twice for no visible reason is a
// surprise: BullMQ reports such jobs as "stalled" and sends CPU-bound work to sandboxed
// processors. The heartbeat loop sees a block as a heartbeat that came late, and says so.

/** A heartbeat this late, in shares of the lease, is worth a warning: half the lease is gone. */
const WARN_SHARE_OF_LEASE = 0.5;

/** Never for less: a loaded machine's timers run late by tens of ms, and a short lease is a test's. */
const WARN_AT_LEAST_MS = 1_000;

/** The warning for a heartbeat that came `lateMs` after it was due while the worker held jobs, if it is late enough to matter. */
export function blockedLoopWarning(lateMs: number, leaseMs: number, workerId: string): string | undefined {
  if (!(lateMs >= Math.max(leaseMs * WARN_SHARE_OF_LEASE, WARN_AT_LEAST_MS))) return undefined;
  const seconds = (ms: number): string => (ms / 1_000).toFixed(1);
  return (
    `offload worker ${workerId}: the event loop was blocked for ${seconds(lateMs)} s while jobs ran, and no heartbeat could renew their leases ` +
    `(the lease is ${seconds(leaseMs)} s): past it, another worker rescues a job and runs it again, and this run's outcome is refused. ` +
    "Move CPU-bound work off the event loop (worker_threads, a child process) or give the worker a longer lease"
  );
}
