// The Offload side of every backend benchmark, so each backend is measured the same way:
// enqueue one at a time, batched enqueue, drain at concurrency 1 and 50 in a separate worker
// process, and enqueue→start latency into an idle worker in another process.
import { Offload } from "../src/index.ts";
import { type Figures, drainInChild, percentile, perSecond, startChild, timed, wallNow } from "./measure.ts";

export type OffloadFigures = Figures;

const CHILD = new URL("./offload-child.ts", import.meta.url);
const BATCH = 1_000;


export async function measureOffload(url: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const offload = new Offload({ backend: url });
  // One task name, several queues: the worker child registers "bench.noop" for the queue it drains.
  const noop = offload.task({ name: "bench.noop", run: () => null });

  const oneMs = await timed(async () => {
    for (let i = 0; i < n; i++) await noop.enqueue({ i }, { queue: "bench-single" });
  });
  const batchMs = await timed(async () => {
    for (let i = 0; i < n; i += BATCH) {
      await noop.enqueueMany(Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => ({ i: i + k })), { queue: "bench-batch" });
    }
  });
  const drain1 = await drainInChild(CHILD, [url, "drain", "bench-single", "1", String(n)]);
  const drain50 = await drainInChild(CHILD, [url, "drain", "bench-batch", "50", String(n)]);

  const latencies: number[] = [];
  let onStart: (at: number) => void = () => {};
  const child = startChild(CHILD, [url, "latency", "bench-latency", "10"], (m) => {
    if (m.type === "started") onStart(m.at);
  });
  await child.ready;
  for (let i = 0; i < latencySamples; i++) {
    const started = new Promise<number>((resolve) => (onStart = resolve));
    const sentAt = wallNow();
    await noop.enqueue({ i }, { queue: "bench-latency" });
    latencies.push((await started) - sentAt);
  }
  await child.stop();
  await offload.close();
  return {
    enqueueOne: perSecond(n, oneMs),
    enqueueBatch: perSecond(n, batchMs),
    drain1: drain1.rate,
    drain50: drain50.rate,
    latencyP50: percentile(latencies, 50),
    latencyP99: percentile(latencies, 99),
    workerRssMiB: drain50.rss,
  };
}
