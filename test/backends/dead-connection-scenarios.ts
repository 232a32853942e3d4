// Scenarios shared by the dead-connection tests of each server backend (they go through a
// FreezingProxy): the same guarantee, one server's way of breaking it at a time.
import assert from "node:assert/strict";
import type { Backend } from "../../src/backend/backend.ts";
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
