// SSE details that need no second process: keep-alive comments on a quiet stream, and
// ?lastEventId= for a first connection (EventSource cannot send the header until it reconnects).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { LocalFolderStore } from "../../src/artifacts/index.ts";
import { createJobsHttp } from "../../src/http/index.ts";
import { Offload } from "../../src/index.ts";

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
