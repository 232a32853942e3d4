// GET /jobs/:id/events: one job's event feed as Server-Sent Events.
//
// Invariants:
// - every SSE id is the feed's own numeric event id, and events go out in id order, so a client
//   that reconnects with Last-Event-ID gets exactly the events after the last one it saw: none
//   lost, none repeated;
// - the stream follows its job through the shared look of its Offload (JobService.follow: one
//   peekJobs() per change signal for every stream and wait of the process, which also fires for
//   writes by worker processes), and re-reads the feed after its last id only when the look says
//   the job has a newer event, has finished, is gone, or could not be seen. 500 streams each
//   re-reading on every signal made 18 reads per signal and p99 1.5 s (docs/decisions.md). The
//   shared look also polls, twice a second; the stream's own look at its job (`pollMs`) is a
//   last resort;
// - the final `result` event carries the job's public view and no id (it is not a feed event);
//   the stream then ends. A client that resumes after the end gets the `result` again;
// - when the client goes away the watch subscription and timers are released at once.
import type { Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import type { JobService } from "../client/job-service.ts";
import type { Look } from "../client/job-watch.ts";
import { systemClock } from "../core/clock.ts";
import type { JobEvent } from "../backend/backend.ts";
import { type JobRecord, isFinished, isJobState } from "../core/job.ts";
import { Wakeup } from "../core/wakeup.ts";
import type { PublicJob } from "./job-view.ts";

/** Events read per round trip; a full batch means "read again before waiting". */
const BATCH = 200;
/** Tells EventSource how soon to reconnect after a dropped connection. */
const RECONNECT_MS = 1_000;

/** Follows one job through the shared look (JobService.follow); resolves with the unsubscribe function. */
export type Follow = (jobId: string, hear: (look: Look) => void) => Promise<() => void>;

export interface EventStreamDeps {
  readonly jobs: JobService;
  readonly follow: Follow;
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
    const live: Live = { wakeup: new Wakeup(), signal: gone.signal, after: afterId, newest: 0, ended: false, state: job.state, moved: false };
    let unsubscribe: () => void;
    try {
      unsubscribe = await deps.follow(job.id, (look) => {
        // Only news for this stream wakes it: other jobs' changes cost it nothing.
        if (look !== "gone" && look !== "unknown") {
          live.newest = Math.max(live.newest, look.lastEventId);
          // Every state change writes an event: one the look's newest id does not show (a worker
          // on code from before Redis's last_event, docs/redis.md) is read all the same.
          if (look.state !== live.state) {
            live.state = look.state;
            live.moved = true;
          }
          if (look.lastEventId <= live.after && !live.moved && !isFinished(look.state)) return;
        }
        if (look === "gone" || look === "unknown" || isFinished(look.state)) live.ended = true;
        live.wakeup.notify();
      });
    } catch (error) {
      // To onError like every other fault (Hono would only print it); the stream ends, and the
      // client reconnects with Last-Event-ID.
      deps.report(error);
      c.req.raw.signal.removeEventListener("abort", leave);
      return;
    }
    deps.tracker.opened();
    try {
      await pump(stream, job, live, deps);
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

/** What the stream and its follower share. */
interface Live {
  readonly wakeup: Wakeup;
  readonly signal: AbortSignal;
  /** The last event id sent: the follower wakes the stream for newer ones. */
  after: number;
  /** The newest event id a shared look has seen. */
  newest: number;
  /** The shared look saw the job finished, gone or not at all: look at the job itself. */
  ended: boolean;
  /** The job's state as the latest look saw it. */
  state: string;
  /** The look saw the state change: read the feed, whatever its newest event id says. */
  moved: boolean;
}

async function pump(stream: SSEStreamingApi, job: JobRecord, live: Live, deps: EventStreamDeps): Promise<void> {
  // A job already finished when we looked has all its events in the feed: send them and end.
  // Past events do not end the stream by themselves: a job that failed and was retried or
  // replayed has a `failed` event followed by `queued`. Each state event says where the job is.
  let done = isFinished(job.state);
  let lastWrite = Date.now();
  let lastLook = Date.now();
  await stream.write(`retry: ${RECONNECT_MS}\n\n`);
  while (!live.signal.aborted) {
    live.moved = false; // this read sees whatever the move wrote
    const events = await deps.jobs.events({ jobId: job.id, afterId: live.after, limit: BATCH });
    for (const event of events) {
      await stream.writeSSE({ id: String(event.id), event: event.type, data: JSON.stringify(eventData(event)) });
      live.after = event.id;
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
        const missed = await deps.jobs.events({ jobId: job.id, afterId: live.after, limit: 1 });
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
    for (;;) {
      const untilKeepAlive = Math.max(1, deps.keepAliveMs - (Date.now() - lastWrite));
      const untilLook = Math.max(1, deps.pollMs - (Date.now() - lastLook));
      const woken = await live.wakeup.wait(Math.min(untilLook, untilKeepAlive), systemClock, live.signal);
      // A look taken while the last read was under way may name events that read already sent:
      // nothing new to read, so wait on.
      if (!woken || live.signal.aborted || live.ended || live.moved || live.newest > live.after) break;
    }
    // The job itself, when the shared look saw it end (or not at all), or as a last resort on the
    // stream's own schedule: a job resumed past its last event, or pruned, has no newer event.
    const ended = live.ended;
    live.ended = false;
    if (!live.signal.aborted && (ended || Date.now() - lastLook >= deps.pollMs)) {
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
