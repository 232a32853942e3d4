// The public API's promises: typed payloads and results, idempotency keys, delayed jobs, and
// inline mode for users' own tests.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { JobFailedError, Offload, Retry } from "../../src/index.ts";
import { FakeClock, drain, nextEvent } from "../../src/testing/index.ts";

describe("public API", () => {
  it("infers payload and result types from the schema and the handler", async () => {
    const offload = new Offload({ mode: "inline" });
    const render = offload.task({
      name: "reports.render",
      schema: z.object({ reportId: z.string(), pages: z.number().int().default(1) }),
      run: async ({ reportId, pages }) => ({ url: `/r/${reportId}.pdf`, pages }),
    });
    const job = await render.enqueue({ reportId: "r1" });
    const result = await job.result();
    const url: string = result.url;
    assert.equal(url, "/r/r1.pdf");
    assert.equal(result.pages, 1, "the schema's output (with defaults) reaches the handler");
    // @ts-expect-error reportId must be a string
    await assert.rejects(render.enqueue({ reportId: 1 }));
    await offload.close();
  });

  it("an idempotency key returns the same job while it is unfinished", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    const send = offload.task({ name: "invoice.send", run: (p: { invoice: string }) => p.invoice });
    const a = await send.enqueue({ invoice: "i-1" }, { key: "invoice:i-1:v1" });
    const b = await send.enqueue({ invoice: "i-1" }, { key: "invoice:i-1:v1" });
    const c = await send.enqueue({ invoice: "i-1" }, { key: "invoice:i-1:v2" });
    assert.equal(a.id, b.id);
    assert.notEqual(a.id, c.id);
    assert.equal(await drain(offload), 2);
    const d = await send.enqueue({ invoice: "i-1" }, { key: "invoice:i-1:v1" });
    assert.notEqual(d.id, a.id, "a finished job no longer holds its key");
    await offload.close();
  });

  it("delay and runAt schedule a job; it runs once the clock reaches it", async () => {
    const clock = new FakeClock();
    const offload = new Offload({ backend: "sqlite::memory:", clock });
    const remind = offload.task({ name: "remind", run: () => "sent" });
    const worker = offload.worker();
    await worker.start();
    const later = await remind.enqueue(null, { delay: "10m" });
    const at = await remind.enqueue(null, { runAt: new Date(clock.now() + 20 * 60_000) });
    assert.equal(await later.state(), "scheduled");
    const first = nextEvent(worker, "succeeded");
    clock.advance(10 * 60_000);
    assert.equal((await first).job.id, later.id);
    assert.equal(await at.state(), "scheduled");
    clock.advance(10 * 60_000);
    assert.equal(await at.result(), "sent");
    await offload.close();
  });

  it("priorities: a higher priority job runs first", async () => {
    const offload = new Offload({ backend: "sqlite::memory:" });
    const order: string[] = [];
    const t = offload.task({ name: "p", run: (name: string) => void order.push(name) });
    await t.enqueue("low", { priority: -5 });
    await t.enqueue("normal");
    await t.enqueue("urgent", { priority: 10 });
    await drain(offload, { concurrency: 1 });
    assert.deepEqual(order, ["urgent", "normal", "low"]);
    await offload.close();
  });

  it("inline mode runs the job inside enqueue, retries included, without waiting out backoff", async () => {
    const offload = new Offload({ mode: "inline" });
    let calls = 0;
    const flaky = offload.task({ name: "flaky", retry: { attempts: 3, base: "1h" }, run: () => {
      calls++;
      if (calls < 3) throw new Retry({ in: "1d" });
      return calls;
    } });
    const job = await flaky.enqueue(null, { delay: "1h" });
    assert.equal(await job.state(), "succeeded");
    assert.equal(await job.result(), 3);
    const broken = offload.task({ name: "broken", retry: { attempts: 2 }, run: () => {
      throw new Error("smtp down");
    } });
    const failed = await broken.enqueue(null);
    await assert.rejects(failed.result(), (e: unknown) => e instanceof JobFailedError && /smtp down/.test(e.message));
    assert.equal((await failed.get()).errors.length, 2);
    await offload.close();
  });

  it("replays failed jobs in bulk and retries one", async () => {
    const offload = new Offload({ mode: "inline" });
    let healthy = false;
    const hook = offload.task({ name: "webhook", queue: "hooks", retry: { attempts: 1 }, run: () => {
      if (!healthy) throw new Error("502");
      return "delivered";
    } });
    const jobs = await hook.enqueueMany([1, 2, 3]);
    for (const j of jobs) assert.equal(await j.state(), "failed");
    healthy = true;
    assert.equal(await offload.jobs.replay({ queue: "hooks" }), 3);
    assert.equal(await drain(offload), 3);
    for (const j of jobs) assert.equal(await j.result(), "delivered");
    // Retrying one failed job by hand puts back that job alone.
    healthy = false;
    const [one, other] = await hook.enqueueMany([4, 5]);
    assert.ok(one && other);
    healthy = true;
    await one.retry();
    assert.equal(await one.state(), "queued");
    assert.equal(await other.state(), "failed", "a retry of one job leaves the others alone");
    assert.equal(await drain(offload), 1);
    assert.equal(await one.result(), "delivered");
    assert.equal(await other.state(), "failed");
    await offload.close();
  });
});
