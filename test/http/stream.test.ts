// SSE details that need no second process: keep-alive comments on a quiet stream, ?lastEventId=
// for a first connection (EventSource cannot send the header until it reconnects), when a stream
// ends, and the options' limits.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { LocalFolderStore } from "../../src/artifacts/index.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { ConfigError, type JobHandle, Offload } from "../../src/index.ts";
import { drain } from "../../src/testing/index.ts";

const dir = mkdtempSync(join(tmpdir(), "offload-stream-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Reads from `reader` until the text read by this call matches `wanted`, or the stream ends. */
async function readText(reader: ReadableStreamDefaultReader<Uint8Array>, wanted: RegExp): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!wanted.test(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

async function readUntilText(body: ReadableStream<Uint8Array>, wanted: RegExp): Promise<string> {
  const reader = body.getReader();
  const text = await readText(reader, wanted);
  await reader.cancel();
  return text;
}

/** A job whose first run failed (its last attempt): a retry runs it again, and that run succeeds. */
async function failedOnce(offload: Offload): Promise<JobHandle<{ runs: number }>> {
  let runs = 0;
  const flaky = offload.task({ name: "flaky", retry: { attempts: 1 }, run: () => {
    runs += 1;
    if (runs === 1) throw new Error("first run fails");
    return { runs };
  } });
  const job = await flaky.enqueue(null);
  await drain(offload);
  assert.equal(await job.state(), "failed");
  return job;
}

it("a quiet stream gets keep-alive comments; ?lastEventId= resumes a first connection after that id", async () => {
  const offload = new Offload({ backend: "sqlite::memory:", artifacts: new LocalFolderStore(dir) });
  try {
    const http = createJobsHttp({ offload, secret: "stream-secret-0123456789", keepAlive: "50ms", pollInterval: "1s" });
    const task = offload.task({ name: "later", run: () => 1 });
    const job = await task.enqueue(null, { delay: "1h" });
    const events = await offload.jobs.events({ jobId: job.id, afterId: 0 });
    assert.equal(events.length, 1, "one event: scheduled");

    const quiet = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
    const text = await readUntilText(quiet.body!, /: keep-alive\n\n/);
    assert.match(text, /event: state\ndata: \{"state":"scheduled"/);
    assert.match(text, /: keep-alive\n\n/);

    const resumed = await http.fetch(new Request(`http://x/jobs/${job.id}/events?lastEventId=${events[0]?.id}`));
    const reader = resumed.body!.getReader();
    const after = await readText(reader, /: keep-alive\n\n/);
    assert.doesNotMatch(after, /event: state/, "nothing before the given id is sent again");
    // Resuming is not muting: an event after the given id still arrives, then the result.
    await job.cancel();
    const later = await readText(reader, /event: result\n/);
    await reader.cancel();
    assert.match(later, /event: state\ndata: \{"state":"cancelled"/, "the event after the given id was sent");
    assert.doesNotMatch(later, /"state":"scheduled"/);
    assert.match(later, /event: result\ndata: \{[^\n]*"state":"cancelled"/);
    await http.streams.idle();
  } finally {
    await offload.close();
  }
});

it("a retried job's stream does not end at its old failure: it follows the rerun to its result", async () => {
  const offload = new Offload({ backend: "sqlite::memory:", artifacts: new LocalFolderStore(dir) });
  try {
    const http = createJobsHttp({ offload, secret: "stream-secret-0123456789", keepAlive: "50ms" });
    const job = await failedOnce(offload);
    await offload.jobs.retry(job.id);

    // The feed holds `failed` and then `queued`: the stream must go on after both.
    const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
    const reader = response.body!.getReader();
    const before = await readText(reader, /: keep-alive\n\n|event: result\n/);
    assert.match(before, /"state":"failed"[\s\S]*"state":"queued"/);
    assert.doesNotMatch(before, /event: result/, "no result while the job waits to run again");
    await drain(offload);
    const rest = await readText(reader, /event: result\n[^\n]*\n/);
    await reader.cancel();
    assert.match(rest, /event: result\ndata: \{[^\n]*"state":"succeeded"/);
    await http.streams.idle();
  } finally {
    await offload.close();
  }
});

it("a rerun that finishes between the stream's feed read and its look at the job has its events sent before the result", async () => {
  const offload = new Offload({ backend: "sqlite::memory:", artifacts: new LocalFolderStore(dir) });
  try {
    const job = await failedOnce(offload);
    // The stream reads the feed (ending in `failed`), then looks at the job. In that one round
    // trip an operator retries the job and a worker runs it to its end.
    const find = offload.jobs.find.bind(offload.jobs);
    let looks = 0;
    offload.jobs.find = async (id: string) => {
      looks++;
      if (looks === 2) { // the first look is the route loading the job
        await offload.jobs.retry(job.id);
        await drain(offload);
      }
      return find(id);
    };
    const http = createJobsHttp({ offload, secret: "stream-secret-0123456789" });
    const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`));
    const text = await readUntilText(response.body!, /event: result\n[^\n]*\n/);
    const sent = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    const feed = (await offload.jobs.events({ jobId: job.id, afterId: 0 })).map((e) => e.id);
    assert.deepEqual(sent, feed, "every event of the feed went out, the rerun's included");
    assert.match(text, /"state":"succeeded"[^\n]*\nid: \d+\n\nevent: result\ndata: \{[^\n]*"state":"succeeded"/, "the result comes last");
    await http.streams.idle();
  } finally {
    await offload.close();
  }
});

it("a stream ends by its look at the job when the feed has nothing more for it, however busy the backend", { timeout: 10_000 }, async () => {
  const offload = new Offload({ backend: "sqlite::memory:", artifacts: new LocalFolderStore(dir) });
  const traffic = offload.task({ name: "traffic", run: () => null });
  let busy = true;
  // Other jobs' changes wake every stream far more often than its pollInterval.
  const load = (async () => {
    while (busy) {
      await traffic.enqueue(null);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    const http = createJobsHttp({ offload, secret: "stream-secret-0123456789", pollInterval: "100ms" });
    const task = offload.task({ name: "later", run: () => 1 });
    const job = await task.enqueue(null, { delay: "1h" });
    // Resumed past every event of this job: only the look at the job itself can end the stream.
    const response = await http.fetch(new Request(`http://x/jobs/${job.id}/events`, { headers: { "last-event-id": "999999999" } }));
    const reader = response.body!.getReader();
    assert.match(await readText(reader, /retry: \d+\n\n/), /retry:/, "the stream is open");
    await job.cancel();
    const text = await readText(reader, /event: result\n[^\n]*\n/);
    await reader.cancel();
    assert.match(text, /event: result\ndata: \{[^\n]*"state":"cancelled"/);
    assert.doesNotMatch(text, /event: state/, "nothing at or before the given id");
    await http.streams.idle();
  } finally {
    busy = false;
    await load;
    await offload.close();
  }
});

it("durations of 0 are refused: a keep-alive or safety poll of 0 would spin, a token of 0 never works", async () => {
  const offload = new Offload({ backend: "sqlite::memory:" });
  try {
    for (const option of ["keepAlive", "pollInterval", "tokenTtl", "urlTtl"] as const) {
      assert.throws(() => createJobsHttp({ offload, secret: "stream-secret-0123456789", [option]: 0 }), (error: unknown) =>
        error instanceof ConfigError && error.message.includes(`${option} must be longer than 0`));
    }
  } finally {
    await offload.close();
  }
});
