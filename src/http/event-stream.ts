// GET /jobs/:id/events: one job's event feed as Server-Sent Events.
//
// Invariants:
// - every SSE id is the feed's own numeric event id, and events go out in id order, so a client
//   that reconnects with Last-Event-ID gets exactly the events after the last one it saw: none
//   lost, none repeated;
// - the stream wakes on the backend's change signal (which also fires for writes by worker
//   processes), re-reads the feed after the last id, and polls slowly as a safety net;
// - the final `result` event carries the job's public view and no id (it is not a feed event);
//   the stream then ends. A client that resumes after the end gets the `result` again;
// - when the client goes away the watch subscription and timers are released at once.
import type { Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import type { JobService } from "../client/job-service.ts";
import { systemClock } from "../core/clock.ts";
import type { JobEvent } from "../backend/backend.ts";
import { type JobRecord, isFinished, isJobState } from "../core/job.ts";
import { Wakeup } from "../core/wakeup.ts";
import type { PublicJob } from "./job-view.ts";

/** Events read per round trip; a full batch means "read again before waiting". */
const BATCH = 200;
/** Tells EventSource how soon to reconnect after a dropped connection. */
const RECONNECT_MS = 1_000;

export type Subscribe = (listener: () => void) => Promise<() => void>;

export interface EventStreamDeps {
  readonly jobs: JobService;
  /** Subscribes to the backend's change signal; resolves with the unsubscribe function. */
  readonly subscribe: Subscribe;
  readonly view: (job: JobRecord) => Promise<PublicJob>;
  readonly tracker: StreamTracker;
  readonly pollMs: number;
  readonly keepAliveMs: number;
  /** Unexpected errors (a backend down mid-stream): the client only sees the stream end. */
  readonly report: (error: unknown) => void;
}

/** Counts open streams (each holds one watch subscription), so tests and metrics can see leaks. */
export class StreamTracker {
  #open = 0;
  #waiters: Array<() => void> = [];

  get open(): number {
    return this.#open;
  }

  opened(): void {
    this.#open++;
  }

  closed(): void {
    this.#open--;
    if (this.#open > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Resolves once no stream is open. */
  idle(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * Last-Event-ID (header, or ?lastEventId= for a first connection): undefined when malformed. An
 * empty one is none, as the SSE standard has it (a client that has seen no id sends it empty).
 */
export function resumeAfter(request: Request): number | undefined {
  const header = request.headers.get("last-event-id")?.trim();
  const query = new URL(request.url).searchParams.get("lastEventId")?.trim();
  const raw = header || query || "0";
  if (!/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}

export function jobEventStream(c: Context, job: JobRecord, afterId: number, deps: EventStreamDeps): Response {
  const response = streamSSE(c, async (stream) => {
    const gone = new AbortController();
    const leave = (): void => gone.abort();
    stream.onAbort(leave);
    c.req.raw.signal.addEventListener("abort", leave, { once: true });
    // The client may have hung up while the route was loading the job: no abort event follows.
    if (c.req.raw.signal.aborted) leave();
    const wakeup = new Wakeup();
    let unsubscribe: () => void;
    try {
      unsubscribe = await deps.subscribe(() => wakeup.notify());
    } catch (error) {
      // To onError like every other fault (Hono would only print it); the stream ends, and the
      // client reconnects with Last-Event-ID.
      deps.report(error);
      c.req.raw.signal.removeEventListener("abort", leave);
      return;
    }
    deps.tracker.opened();
    try {
      await pump(stream, job, afterId, { wakeup, signal: gone.signal }, deps);
    } catch (error) {
      deps.report(error); // the client reconnects with Last-Event-ID and loses nothing
    } finally {
      unsubscribe();
      deps.tracker.closed();
      c.req.raw.signal.removeEventListener("abort", leave);
    }
  });
  // Proxies (nginx) must not buffer the stream.
  response.headers.set("x-accel-buffering", "no");
  return response;
}

async function pump(
  stream: SSEStreamingApi,
  job: JobRecord,
  afterId: number,
  live: { readonly wakeup: Wakeup; readonly signal: AbortSignal },
  deps: EventStreamDeps,
): Promise<void> {
  let after = afterId;
  // A job already finished when we looked has all its events in the feed: send them and end.
  // Past events do not end the stream by themselves: a job that failed and was retried or
  // replayed has a `failed` event followed by `queued`. Each state event says where the job is.
  let done = isFinished(job.state);
  let lastWrite = Date.now();
  let lastLook = Date.now();
  await stream.write(`retry: ${RECONNECT_MS}\n\n`);
  while (!live.signal.aborted) {
    const events = await deps.jobs.events({ jobId: job.id, afterId: after, limit: BATCH });
    for (const event of events) {
      await stream.writeSSE({ id: String(event.id), event: event.type, data: JSON.stringify(eventData(event)) });
      after = event.id;
      if (event.type === "state" && isJobState(event.data["state"])) done = isFinished(event.data["state"]);
    }
    if (events.length > 0) lastWrite = Date.now();
    if (events.length === BATCH) continue;
    if (done) {
      const final = await deps.jobs.find(job.id);
      if (!final) return;
      if (isFinished(final.state)) {
        // Retried and run to its end between the feed read above and this look (one round
        // trip): that run's events were written with its states, so they are in the feed now,
        // and they go out before the result.
        const missed = await deps.jobs.events({ jobId: job.id, afterId: after, limit: 1 });
        if (missed.length > 0) continue;
        await stream.writeSSE({ event: "result", data: JSON.stringify(await deps.view(final)) });
        return;
      }
      done = false; // retried since its last event was read: follow the next run
    }
    if (Date.now() - lastWrite >= deps.keepAliveMs) {
      await stream.write(": keep-alive\n\n");
      lastWrite = Date.now();
    }
    const untilKeepAlive = Math.max(1, deps.keepAliveMs - (Date.now() - lastWrite));
    const untilLook = Math.max(1, deps.pollMs - (Date.now() - lastLook));
    await live.wakeup.wait(Math.min(untilLook, untilKeepAlive), systemClock, live.signal);
    // Safety net for a missed signal or a pruned feed: look at the job itself, on its own
    // schedule, since on a busy backend other jobs' changes wake this loop all the time.
    if (!live.signal.aborted && Date.now() - lastLook >= deps.pollMs) {
      lastLook = Date.now();
      const current = await deps.jobs.find(job.id);
      if (!current) return;
      if (isFinished(current.state)) done = true; // read the feed once more, then end
    }
  }
}

function eventData(event: JobEvent): Record<string, unknown> {
  return { ...event.data, at: new Date(event.at).toISOString() };
}
