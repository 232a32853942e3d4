// Route and stream edges that need no worker process: clients that leave early, HEAD requests,
// wrong methods, and a job that finishes between the route's read and its cancel.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LocalFolderStore } from "../../src/artifacts/index.ts";
import type { ArtifactStore } from "../../src/artifacts/index.ts";
import { createJobsHttp, type JobsHttp } from "../../src/http/index.ts";
import { Offload } from "../../src/index.ts";
import { freePort } from "../backends/redis-processes.ts";

const SECRET = "edges-secret-0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "offload-edges-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Counts the follows (of the shared look) streams take and give back, by wrapping offload.jobs.follow. */
class Subscriptions {
  taken = 0;
  live = 0;
  #waiters: Array<() => void> = [];

  constructor(offload: Offload) {
    const follow = offload.jobs.follow.bind(offload.jobs);
    offload.jobs.follow = async (id, hear) => {
      this.taken++;
      const unsubscribe = await follow(id, hear);
      this.live++;
      this.#changed();
      return () => {
        unsubscribe();
        this.live--;
        this.#changed();
      };
    };
  }

  /** Resolves once `holds` is true of this counter. */
  until(holds: (s: Subscriptions) => boolean): Promise<void> {
    if (holds(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (holds(this)) resolve();
        else this.#waiters.push(check);
      };
      this.#waiters.push(check);
    });
  }

  #changed(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const check of waiters) check();
  }
}

async function withOffload(
  run: (o: { offload: Offload; http: JobsHttp; subs: Subscriptions; store: LocalFolderStore }) => Promise<void>,
  options: { inline?: boolean; artifacts?: (store: LocalFolderStore) => ArtifactStore } = {},
): Promise<void> {
  const store = new LocalFolderStore(join(dir, "artifacts"));
  const artifacts = options.artifacts ? options.artifacts(store) : store;
  const offload = options.inline
    ? new Offload({ mode: "inline", artifacts })
    : new Offload({ backend: "sqlite::memory:", artifacts });
  try {
    const subs = new Subscriptions(offload);
    const http = createJobsHttp({ offload, secret: SECRET, pollInterval: "1s" });
    await run({ offload, http, subs, store });
  } finally {
    await offload.close();
  }
}

describe("SSE stream lifetime", () => {
  it("a stream whose client left before it started ends at once and gives its subscription back", { timeout: 10_000 }, async () => {
    await withOffload(async ({ offload, http, subs }) => {
      const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
      const gone = new AbortController();
      gone.abort(); // the client hung up while the route was still loading the job
      const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`, { signal: gone.signal }));
      assert.equal(response.status, 200);
      await response.text(); // ends instead of polling for a reader that is not there
      await subs.until((s) => s.taken === 1 && s.live === 0);
      await http.streams.idle();
      assert.equal(http.streams.open, 0);
    });
  });

  it("HEAD on the event stream answers the headers without opening a stream", async () => {
    await withOffload(async ({ offload, http, subs }) => {
      const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
      const head = await http.fetch(new Request(`http://x/jobs/${job.id}/events`, { method: "HEAD" }));
      assert.equal(head.status, 200);
      assert.match(head.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.equal(head.body, null);
      assert.equal(subs.taken, 0, "no subscription for a response nobody can read");
      assert.equal(http.streams.open, 0);
      const unknown = await http.fetch(new Request("http://x/jobs/01890000-0000-7000-8000-000000000000/events", { method: "HEAD" }));
      assert.equal(unknown.status, 404);
    });
  });
});

describe("artifact downloads", () => {
  it("HEAD on an artifact answers its headers and closes the file it opened", async () => {
    const cancelled: string[] = [];
    const spy = (store: LocalFolderStore): ArtifactStore => ({
      put: (jobId, name, body) => store.put(jobId, name, body),
      list: (jobId) => store.list(jobId),
      remove: (jobId) => store.remove(jobId),
      async get(jobId, name) {
        const found = await store.get(jobId, name);
        if (!found) return undefined;
        const reader = found.body.getReader();
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          },
          async cancel(reason) {
            cancelled.push(name);
            await reader.cancel(reason);
          },
        });
        return { ...found, body };
      },
    });
    await withOffload(async ({ offload, http }) => {
      const task = offload.task({ name: "make-file", run: async (_: null, ctx) => ctx.artifacts.put("out.csv", "a,b\n1,2\n") });
      const job = await task.enqueue(null);
      const url = `http://x${http.artifactUrl(job.id, "out.csv")}`;
      const head = await http.fetch(new Request(url, { method: "HEAD" }));
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), "8");
      assert.equal(head.body, null);
      assert.deepEqual(cancelled, ["out.csv"], "the file stream was released, not left open");
      const get = await http.fetch(new Request(url));
      assert.equal(await get.text(), "a,b\n1,2\n");
    }, { inline: true, artifacts: spy });
  });
});

describe("status codes", () => {
  it("a known route with the wrong method is a 405 naming the allowed methods", async () => {
    await withOffload(async ({ offload, http }) => {
      const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
      const cases = [
        ["GET", `/jobs/${job.id}/cancel`, "POST"],
        ["DELETE", `/jobs/${job.id}`, "GET, HEAD"],
        ["POST", `/jobs/${job.id}/events`, "GET, HEAD"],
      ] as const;
      for (const [method, path, allow] of cases) {
        const response = await http.fetch(new Request(`http://x${path}`, { method }));
        assert.equal(response.status, 405, `${method} ${path}`);
        assert.equal(response.headers.get("allow"), allow);
        assert.deepEqual(await response.json(), { error: { code: "METHOD_NOT_ALLOWED", message: "method not allowed" } });
      }
      assert.equal((await http.fetch(new Request(`http://x/jobs/${job.id}/nothing`))).status, 404);
    });
  });

  it("cancel is a 409 when the job finished between the route's read and its cancel", async () => {
    await withOffload(async ({ offload, http }) => {
      const job = await offload.task({ name: "quick", run: () => 1 }).enqueue(null);
      assert.equal(await job.state(), "succeeded");
      // The route's first read saw the job still running: it finished right after.
      const find = offload.jobs.find.bind(offload.jobs);
      let reads = 0;
      offload.jobs.find = async (id) => {
        const found = await find(id);
        reads++;
        return reads === 1 && found ? { ...found, state: "active", finishedAt: undefined } : found;
      };
      const response = await http.fetch(new Request(`http://x/jobs/${job.id}/cancel`, { method: "POST" }));
      assert.equal(response.status, 409);
      assert.deepEqual(await response.json(), { error: { code: "CONFLICT", message: "job is already succeeded" } });
      assert.equal(await job.state(), "succeeded");
    }, { inline: true });
  });
});

describe("a job store that cannot be reached", () => {
  // Dead ports: nothing listens there. A 503 with Retry-After tells a client or a load balancer
  // to come back shortly; a 500 said the server was broken.
  for (const [name, url] of [
    ["redis", (port: number) => `redis://127.0.0.1:${port}?prefix=gone&replyTimeout=300ms`],
    ["postgres", (port: number) => `postgres://postgres@127.0.0.1:${port}/test?replyTimeout=300ms`],
  ] as const) {
    it(`${name}: a read answers 503 with Retry-After, and nothing of the error`, { timeout: 20_000 }, async () => {
      const offload = new Offload({ backend: url(await freePort()) });
      const reported: unknown[] = [];
      const http = createJobsHttp({ offload, secret: SECRET, onError: (error) => reported.push(error) });
      try {
        const response = await http.fetch(new Request("http://x/jobs/01890000-0000-7000-8000-000000000000"));
        assert.equal(response.status, 503);
        assert.equal(response.headers.get("retry-after"), "2");
        assert.deepEqual(await response.json(), { error: { code: "UNAVAILABLE", message: "job store unavailable, try again shortly" } });
        assert.equal(reported.length, 1, "the cause goes to onError, not to the client");
      } finally {
        await offload.close();
      }
    });
  }
});

describe("shutdown, a failed subscription, empty headers", () => {
  it("a request after offload.close() (a graceful shutdown under way) answers 503 with Retry-After", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
    const http = createJobsHttp({ offload, secret: SECRET, onError: () => {} });
    await offload.close();
    const response = await http.fetch(new Request(`http://x/jobs/${job.id}`));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "2");
  });

  it("a stream whose change subscription fails goes to onError and ends, leaving no stream open", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const reported: unknown[] = [];
      const http = createJobsHttp({ offload, secret: SECRET, onError: (error) => reported.push(error) });
      const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
      offload.jobs.follow = () => Promise.reject(new Error("subscription refused"));
      const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
      await response.text(); // the stream ends by itself
      assert.deepEqual(reported.map((e) => (e as Error).message), ["subscription refused"]);
      assert.equal(http.streams.open, 0);
    } finally {
      await offload.close();
    }
  });

  it("an empty Last-Event-ID (header or query) is none: the stream starts at the job's first event", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    try {
      const http = createJobsHttp({ offload, secret: SECRET });
      const job = await offload.task({ name: "later", run: () => 1 }).enqueue(null, { delay: "1h" });
      await job.cancel();
      for (const request of [
        new Request(`http://x/jobs/${job.id}/events`, { headers: { "last-event-id": "" } }),
        new Request(`http://x/jobs/${job.id}/events?lastEventId=`),
      ]) {
        const response = await http.fetch(request);
        assert.equal(response.status, 200);
        const text = await response.text(); // a finished job's stream ends by itself
        assert.match(text, /"state":"scheduled"[\s\S]*"state":"cancelled"[\s\S]*event: result/);
      }
      await http.streams.idle();
    } finally {
      await offload.close();
    }
  });
});
