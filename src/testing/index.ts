// Helpers for testing apps that use Offload (and for Offload's own tests): a fake clock, waiting
// on worker events instead of sleeping, and draining a queue to empty.
import type { Offload } from "../client/offload.ts";
import { WaitTimeoutError } from "../core/errors.ts";
import { systemClock } from "../core/clock.ts";
import { Wakeup } from "../core/wakeup.ts";
import type { Worker, WorkerEvent, WorkerOptions } from "../worker/worker.ts";

export { FakeClock } from "../core/clock.ts";

type EventOf<T extends WorkerEvent["type"]> = Extract<WorkerEvent, { type: T }>;

/**
 * Resolves with the next event of `type` from `worker` that matches `where`. Rejects with
 * WaitTimeoutError after `timeoutMs` of real time (a guard against a hung test, not a wait).
 */
export function nextEvent<T extends WorkerEvent["type"]>(
  worker: Worker,
  type: T,
  where: (event: EventOf<T>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<EventOf<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.off("job", listener);
      reject(new WaitTimeoutError(`a ${type} event`, timeoutMs));
    }, timeoutMs);
    const listener = (event: WorkerEvent): void => {
      if (event.type === type && where(event as EventOf<T>)) {
        clearTimeout(timer);
        worker.off("job", listener);
        resolve(event as EventOf<T>);
      }
    };
    worker.on("job", listener);
  });
}

/** Collects every event a worker emits, for assertions after the fact. */
export function recordEvents(worker: Worker): WorkerEvent[] {
  const events: WorkerEvent[] = [];
  worker.on("job", (e) => events.push(e));
  return events;
}

/**
 * Runs a worker until none of its queues has a job queued, active or due, then stops it (jobs
 * scheduled for later are left alone). Returns how many jobs reached an outcome.
 */
export async function drain(offload: Offload, options: WorkerOptions = {}): Promise<number> {
  const worker = offload.worker(options);
  const wakeup = new Wakeup();
  let finished = 0;
  worker.on("job", (e) => {
    if (e.type !== "started") finished++;
    wakeup.notify();
  });
  await worker.start();
  const backend = await offload.backend();
  for (;;) {
    const counts = await offload.jobs.counts();
    const waiting = counts.filter((c) => worker.queues.includes(c.queue)).some((c) => c.counts.queued > 0 || c.counts.active > 0);
    const nextDue = await backend.nextDueAt(worker.queues);
    const due = nextDue !== undefined && nextDue <= offload.clock.now();
    if (!waiting && !due && worker.active.length === 0) break;
    await wakeup.wait(50, systemClock);
  }
  await worker.stop();
  return finished;
}
