// Scenarios shared by the dead-connection tests of each server backend (they go through a
// FreezingProxy): the same guarantee, one server's way of breaking it at a time.
import assert from "node:assert/strict";
import type { Backend, NewJob } from "../../src/backend/backend.ts";
import { Offload } from "../../src/index.ts";
import type { FreezingProxy } from "./freezing-proxy.ts";
import { newJob } from "../conformance/fixtures.ts";

/**
 * A worker that reaches the server through `proxy` (URL `viaProxy`) runs jobs enqueued by another
 * process (URL `direct`); every connection it holds freezes between two batches. It must find
 * out, connect again, and finish the second batch, whose jobs it hears of only over a live
 * connection (its own poll is 60 s).
 */
export async function workerOutlivesFrozenConnections(proxy: FreezingProxy, viaProxy: string, direct: string): Promise<void> {
  const offload = new Offload({ backend: viaProxy });
  const enqueuer = new Offload({ backend: direct });
  try {
    offload.task({ name: "echo", run: (p: { n: number }) => p.n });
    const echo = enqueuer.task({ name: "echo", run: (p: { n: number }) => p.n });
    const worker = offload.worker({ concurrency: 5, lease: "3s", heartbeat: "500ms", poll: "60s" });
    worker.on("error", () => {}); // the frozen connections' timeouts are reported here
    await worker.start();
    const first = await echo.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n })));
    assert.deepEqual(await Promise.all(first.map((h) => h.result({ timeout: "20s" }))), first.map((_, n) => n));

    const before = proxy.connections;
    assert.ok(proxy.freeze() >= 2, "the command (or pooled) and the change-signal connections were frozen");
    const second = await echo.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n: 100 + n })));
    assert.deepEqual(await Promise.all(second.map((h) => h.result({ timeout: "30s" }))), second.map((_, n) => 100 + n));
    assert.ok(proxy.connections > before, "the worker's process connected again");
    await worker.stop();
  } finally {
    await offload.close();
    await enqueuer.close();
  }
}

/**
 * A watcher of `backend` is subscribed; `freeze()` silences its change-signal connection (and
 * nothing else is in flight, so only the backend's own probe can notice). The new subscription
 * must tell the watcher to look again (changes made meanwhile were missed), and from then on it
 * must hear a change `writer`, another process, makes.
 */
export async function watcherHearsAgainAfterFreeze(backend: Backend, writer: Backend, freeze: () => void): Promise<void> {
  let signalled = (): void => {};
  const next = (): Promise<void> => new Promise<void>((resolve) => (signalled = resolve));
  const subscribed = next();
  const stop = backend.watch(() => signalled());
  try {
    await subscribed;
    freeze();
    await next();
    const heardWrite = next();
    await writer.enqueue({ jobs: [newJob()], now: Date.now() });
    await heardWrite;
  } finally {
    stop();
  }
}

/**
 * Enqueues through `viaProxy` (a backend that reaches the server through `proxy`, with a short
 * reply timeout) whose replies are lost after the server stored the jobs. Each enqueue must still
 * answer as if the first reply had come: every job stored once, reported created; a keyed job
 * whose key another job held is answered with that holder. `direct` reads the server as it is.
 */
export async function enqueueSurvivesLostReplies(proxy: FreezingProxy, viaProxy: Backend, direct: Backend): Promise<void> {
  const now = Date.now();
  const count = async (): Promise<number> => (await direct.listJobs({ limit: 1_000 })).length;

  const due = (overrides: Parameters<typeof newJob>[0] = {}): NewJob => newJob({ runAt: now, ...overrides });
  const batch = [due(), due(), due({ runAt: now + 60_000 })];
  proxy.loseRepliesAfter(batch[1]?.id ?? "");
  const results = await viaProxy.enqueue({ jobs: batch, now });
  assert.equal(proxy.repliesLost, 1, "the reply to the first attempt was lost");
  assert.deepEqual(results, [
    { job: { id: batch[0]?.id, state: "queued" }, created: true },
    { job: { id: batch[1]?.id, state: "queued" }, created: true },
    { job: { id: batch[2]?.id, state: "scheduled" }, created: true },
  ]);
  assert.equal(await count(), 3, "each job stored once");

  const keyed = due({ key: "lost-reply:own" });
  proxy.loseRepliesAfter(keyed.id);
  assert.deepEqual(await viaProxy.enqueue({ jobs: [keyed], now }), [{ job: { id: keyed.id, state: "queued" }, created: true }],
    "the job that now holds the key is the one this call stored");

  const holder = due({ key: "lost-reply:held" });
  await direct.enqueue({ jobs: [holder], now });
  const [matched, fresh] = [due({ key: "lost-reply:held" }), due()];
  proxy.loseRepliesAfter(fresh.id);
  const mixed = await viaProxy.enqueue({ jobs: [matched, fresh], now });
  assert.deepEqual(mixed.map((r) => [r.job.id, r.created]), [[holder.id, false], [fresh.id, true]]);
  assert.equal(proxy.repliesLost, 3);
  assert.equal(await count(), 6, "no second job for one of them");
  assert.equal(await direct.getJob(matched.id), undefined);
}

/**
 * Claims through `viaProxy` (as above) while the claim's reply is lost after the server took the
 * jobs. The claim must still hand them over, leased to this worker at their first attempt, and
 * their tokens must complete them; with the reply lost they used to sit active until the lease
 * ran out, and rescue charged them an attempt they never ran.
 */
export async function claimSurvivesLostReply(proxy: FreezingProxy, viaProxy: Backend, direct: Backend): Promise<void> {
  const now = Date.now();
  const queue = "lost-claim";
  const jobs = [newJob({ queue, runAt: now }), newJob({ queue, runAt: now, priority: 5 }), newJob({ queue, runAt: now })];
  await direct.enqueue({ jobs, now });
  const worker = `lost-claim-${jobs[0]?.id ?? ""}`; // the marker the proxy looks for in the claim
  const lost = proxy.repliesLost;
  proxy.loseRepliesAfter(worker);
  const claimed = await viaProxy.claim({ queues: [queue], limit: 10, worker, leaseMs: 60_000, now });
  assert.equal(proxy.repliesLost, lost + 1, "the reply to the claim was lost");
  assert.deepEqual(claimed.map((c) => c.job.id), [jobs[1]?.id, jobs[0]?.id, jobs[2]?.id], "every job the claim took, in claim order");
  for (const { job } of claimed) {
    assert.equal(job.state, "active");
    assert.equal(job.attempt, 1);
    assert.equal(job.worker, worker);
    assert.equal(job.leaseUntil, now + 60_000);
  }
  const acks = claimed.map((c) => ({ id: c.job.id, token: c.token, resultJson: "true" }));
  assert.deepEqual(await direct.complete(acks, now + 1), ["OK", "OK", "OK"]);
}

/**
 * A claim written to a connection that has gone silent never reaches the server. Its recovery
 * finds no job it took, and the claim must fail (the worker backs off and claims again) rather than
 * answer "no jobs": a worker reads a short claim as an empty queue and sleeps until its poll beside
 * waiting jobs. `viaProxy` has a short reply timeout; the claim fails with the error of its lost
 * reply (`lostReply`), and the next claim takes the jobs.
 */
export async function claimLostOnTheWayFails(proxy: FreezingProxy, viaProxy: Backend, direct: Backend, lostReply: RegExp): Promise<void> {
  const now = Date.now();
  const queue = "claim-lost-on-the-way";
  const jobs = [newJob({ queue, runAt: now }), newJob({ queue, runAt: now })];
  await direct.enqueue({ jobs, now });
  await viaProxy.counts(); // a connection is open, to go silent
  assert.ok(proxy.freeze() >= 1);
  const claim = (): Promise<readonly { job: { id: string } }[]> => viaProxy.claim({ queues: [queue], limit: 10, worker: "w", leaseMs: 60_000, now });
  await assert.rejects(claim(), lostReply, "a claim that took nothing and never reached the server is no answer");
  assert.deepEqual((await claim()).map((c) => c.job.id).sort(), jobs.map((j) => j.id).sort());
}
