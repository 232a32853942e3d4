// A web process at scale: hundreds of pending HTTP requests each await `job.result()`, or follow
// their job over SSE, while workers elsewhere finish jobs all the time. Each change signal (any
// job of the backend, from any process) used to make every waiter read its own job: with 1,000
// waiters and a worker at 170 jobs/s, 12 reads per job and 2,000 reads a second on PostgreSQL,
// latency to p99 670 ms (docs/decisions.md, "Many waiters"). The waiters of one Offload now share
// one peekJobs() per signal and read their own job only once it has something for them.
//
// Reads are counted through the backend the app's Offload is given: what could break is the count,
// not a time.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { Backend } from "../../src/backend/backend.ts";
import { PostgresBackend } from "../../src/backend/postgres/postgres-backend.ts";
import { RedisBackend } from "../../src/backend/redis/redis-backend.ts";
import { randomToken } from "../../src/core/ids.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { Offload } from "../../src/index.ts";
import { FakeClock } from "../../src/testing/index.ts";
import { openIsolated } from "./postgres-helpers.ts";
import { unlinkAndQuit } from "./redis-helpers.ts";

const REDIS_URL = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const admin = new Redis(REDIS_URL);
const run = `mw${randomToken().slice(0, 8)}`;
after(() => unlinkAndQuit(admin, `{${run}*`));

interface Reads {
  getJob: number;
  peekJobs: number;
  readEvents: number;
}

/** Counts the reads the app's Offload makes through `backend`. */
function counting(backend: Backend): Reads {
  const reads: Reads = { getJob: 0, peekJobs: 0, readEvents: 0 };
  const getJob = backend.getJob.bind(backend);
  const peekJobs = backend.peekJobs.bind(backend);
  const readEvents = backend.readEvents.bind(backend);
  backend.getJob = (id) => {
    reads.getJob++;
    return getJob(id);
  };
  backend.peekJobs = (ids) => {
    reads.peekJobs++;
    return peekJobs(ids);
  };
  backend.readEvents = (request) => {
    reads.readEvents++;
    return readEvents(request);
  };
  return reads;
}

/** Polls `condition` until it holds; fails after `ms` with `what`. */
async function until(what: () => string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Pair {
  /** The web process's backend, counted. */
  readonly web: Backend;
  /** Another process's: its writes reach `web` as change signals. */
  readonly worker: Backend;
  close(): Promise<void>;
}

const backends: Record<string, () => Promise<Pair>> = {
  postgres: async () => {
    const web = await openIsolated();
    const worker = await PostgresBackend.open({ url: `${process.env["OFFLOAD_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"}`, schema: web.schema });
    await web.listening();
    return { web, worker, close: async () => { await worker.close(); await web.close(); } };
  },
  redis: async () => {
    const prefix = `${run}${randomToken().slice(0, 6)}`;
    const web = new RedisBackend({ url: REDIS_URL, prefix });
    const worker = new RedisBackend({ url: REDIS_URL, prefix });
    return { web, worker, close: async () => { await worker.close(); await web.close(); } };
  },
};

const WAITERS = 300;
const BATCH = 30;
const STREAMS = 100;
const STEPS = 3;

/** Reads an SSE body to its end, counting progress events; resolves with the whole text. */
async function readStream(body: ReadableStream<Uint8Array>, progressSeen: (n: number) => void): Promise<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text;
    text += decoder.decode(value, { stream: true });
    progressSeen(text.split("event: progress\n").length - 1);
  }
}

for (const [name, open] of Object.entries(backends)) {
  describe(`many waiters on ${name}`, () => {
    it(`${WAITERS} result() waits: one peek per change signal, and one read each when its job ends`, { timeout: 25_000 }, async () => {
      const pair = await open();
      const offload = new Offload({ backend: pair.web });
      try {
        const reads = counting(pair.web);
        const task = offload.task({ name: "t", run: () => null });
        const handles = await task.enqueueMany(Array.from({ length: WAITERS }, (_, i) => i));
        const results = new Map<string, Promise<unknown>>(handles.map((h) => [h.id, h.result({ timeout: "20s" })]));
        // Every wait has looked once at its job (queued): from here on, only signals wake them.
        await until(() => `${WAITERS} first reads (${reads.getJob})`, () => reads.getJob >= WAITERS);
        const firstReads = reads.getJob;

        // Another process runs the jobs in batches, each batch's completions a change signal.
        let batches = 0;
        for (;;) {
          const claimed = await pair.worker.claim({ queues: ["default"], limit: BATCH, worker: "w", leaseMs: 30_000, now: Date.now() });
          if (claimed.length === 0) break;
          batches++;
          await pair.worker.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: JSON.stringify(`done ${c.job.id}`) })), Date.now());
          for (const c of claimed) assert.equal(await results.get(c.job.id), `done ${c.job.id}`);
        }
        assert.equal(batches, WAITERS / BATCH);

        // Each wait reads its own job once more, when it has ended (a little slack: a wait whose
        // job ended just as it first looked may look twice). Before, every signal (each claim and
        // each completion) made every pending wait read: thousands of reads here.
        const laterReads = reads.getJob - firstReads;
        assert.ok(laterReads <= WAITERS + WAITERS / 10, `${laterReads} reads of single jobs after the first looks, for ${WAITERS} jobs`);
        // The shared looks: about one per signal; far fewer than one per wait.
        assert.ok(reads.peekJobs >= 1 && reads.peekJobs <= 10 * batches + 20, `${reads.peekJobs} peeks for ${batches} batches`);
      } finally {
        await offload.close();
        await pair.close();
      }
    });

    it("idle waits cost one shared look per safety poll, not one read per wait", { timeout: 20_000 }, async () => {
      const pair = await open();
      const clock = new FakeClock(Date.now());
      const offload = new Offload({ backend: pair.web, clock });
      let waits: Promise<unknown>[] = [];
      try {
        const reads = counting(pair.web);
        const task = offload.task({ name: "t", run: () => null });
        const handles = await task.enqueueMany(Array.from({ length: 100 }, (_, i) => i));
        waits = handles.map((h) => h.result());
        await until(() => `first reads (${reads.getJob})`, () => reads.getJob >= handles.length);
        const firstReads = reads.getJob;
        // Nobody runs the jobs: only the safety poll looks again. Three polls.
        for (let poll = 1; poll <= 3; poll++) {
          const peeks = reads.peekJobs;
          // The shared look's own sleep: the waits sleep too (their last-resort looks, 30 s), and
          // moving time while the look was still reading left its next sleep not yet due.
          await clock.sleeping(500);
          clock.advance(500);
          await until(() => `poll ${poll}'s peek (${reads.peekJobs} peeks, ${reads.getJob - firstReads} reads)`, () => reads.peekJobs > peeks);
        }
        assert.equal(reads.getJob, firstReads, "no wait read its own job: none had ended");
        // Expected before the cancel is sent: the wait may hear of it (another connection's
        // notification) before the cancel's own reply arrives, and a rejection nobody handles yet
        // fails the test.
        const cancelled = assert.rejects(waits[0] ?? Promise.resolve(), /cancelled/);
        await pair.worker.cancel(handles[0]?.id ?? "", clock.now());
        await cancelled;
      } finally {
        const ended = Promise.allSettled(waits); // handled before close() ends them with ClosedError
        await offload.close();
        await ended;
        await pair.close();
      }
    });

    it(`${STREAMS} SSE streams: one peek per change signal, and each reads its feed only when its job has new events`, { timeout: 25_000 }, async () => {
      const pair = await open();
      const offload = new Offload({ backend: pair.web });
      try {
        const reads = counting(pair.web);
        const http = createJobsHttp({ offload, secret: "many-streams-secret-0123456789" });
        const task = offload.task({ name: "t", run: () => null });
        const handles = await task.enqueueMany(Array.from({ length: STREAMS }, (_, i) => i));
        const seen = new Map<string, number>(handles.map((h) => [h.id, 0]));
        const streams = await Promise.all(handles.map(async (h) => {
          const response = await http.fetch(new Request(`http://x/jobs/${h.id}/events`));
          assert.equal(response.status, 200);
          // Wrapped: an async function returning the promise itself would wait for the stream's end.
          return { text: readStream(response.body ?? new ReadableStream(), (n) => seen.set(h.id, n)) };
        }));
        await until(() => `${STREAMS} streams open (${http.streams.open})`, () => http.streams.open === STREAMS);
        const claimed = await pair.worker.claim({ queues: ["default"], limit: STREAMS, worker: "w", leaseMs: 30_000, now: Date.now() });
        assert.equal(claimed.length, STREAMS);
        for (let step = 1; step <= STEPS; step++) {
          // Each progress write is a change signal of its own, heard by every stream.
          for (const c of claimed) await pair.worker.progress({ id: c.job.id, token: c.token, progress: step / (STEPS + 1), message: undefined, now: Date.now() });
          await until(() => `progress ${step} at every stream`, () => [...seen.values()].every((n) => n >= step));
        }
        await pair.worker.complete(claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "null" })), Date.now());
        for (const text of await Promise.all(streams.map((stream) => stream.text))) assert.match(text, /event: result\ndata: \{[^\n]*"state":"succeeded"/);
        await http.streams.idle();

        // A job's feed gets read when it has something new: its queued and active events, each
        // progress step, its end, and a last look before the result (a little slack). Before,
        // every signal (here a few hundred) made every open stream read its feed.
        const perStream = STEPS + 4;
        assert.ok(reads.readEvents <= STREAMS * (perStream + 2), `${reads.readEvents} feed reads for ${STREAMS} streams of ${perStream} steps`);
        // Looks at the job itself: the route's, and the stream's before its result.
        assert.ok(reads.getJob <= STREAMS * 3, `${reads.getJob} reads of single jobs for ${STREAMS} streams`);
        assert.ok(reads.peekJobs >= 1, "the streams follow their jobs through the shared look");
      } finally {
        await offload.close();
        await pair.close();
      }
    });
  });
}

describe("redis: an SSE stream beside a worker on code from before last_event (a rolling upgrade)", () => {
  it("a state change written without moving last_event still wakes the stream: the job's state moved", { timeout: 20_000 }, async () => {
    const backend = new RedisBackend({ url: REDIS_URL, prefix: `${run}-old` });
    const offload = new Offload({ backend });
    try {
      // The stream's own look at its job is a minute away: only the shared look can wake it.
      const http = createJobsHttp({ offload, secret: "older-writer-secret-0123456789", pollInterval: "60s" });
      const task = offload.task({ name: "t", run: () => null });
      const job = await task.enqueue(null);
      const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
      const reader = (response.body ?? new ReadableStream<Uint8Array>()).getReader();
      const decoder = new TextDecoder();
      let text = "";
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += decoder.decode(value, { stream: true });
        }
      })();
      await until(() => "the queued event at the stream", () => text.includes('"state":"queued"'));
      // What a worker on older code writes when it claims: the state and its event, as a field of
      // the job's hash, and the change signal; not last_event.
      const claimAsOlderCode = `
        local p, id, at = ARGV[1], ARGV[2], ARGV[3]
        local seq = redis.call('INCR', p .. 'event-seq')
        redis.call('HSET', p .. 'job:' .. id, 'state', 'active', 'attempt', '1', '~' .. seq, 'state\t' .. at .. '\t{"state":"active","attempt":1}')
        redis.call('PUBLISH', p .. 'changed', 'older-worker')`;
      await admin.eval(claimAsOlderCode, 0, backend.keyPrefix, job.id, String(Date.now()));
      await until(() => "the active event at the stream", () => text.includes('"state":"active"'), 5_000);
      await reader.cancel();
      await reading;
    } finally {
      await offload.close();
    }
  });
});
