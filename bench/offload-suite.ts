// The Offload side of every backend benchmark, so each backend is measured the same way:
// enqueue one at a time, batched enqueue, drain at concurrency 1 and 50 in a separate worker
// process, and enqueue→start latency into an idle worker in another process.
import { Offload } from "../src/index.ts";
import { type Figures, measureSystem } from "./measure.ts";

export type OffloadFigures = Figures;

const CHILD = new URL("./offload-child.ts", import.meta.url);
export async function measureOffload(url: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const offload = new Offload({ backend: url });
  // One task name, several queues: the worker child registers "bench.noop" for the queue it drains.
  const noop = offload.task({ name: "bench.noop", run: () => null });
  try {
    return await measureSystem(
      {
        queues: { single: "bench-single", batch: "bench-batch", latency: "bench-latency" },
        enqueueOne: async (queue, i) => {
          await noop.enqueue({ i }, { queue });
        },
        enqueueMany: async (queue, items) => {
          await noop.enqueueMany(items.map((i) => ({ i })), { queue });
        },
        child: (mode, queue, concurrency, count) => ({ script: CHILD, args: [url, mode, queue, String(concurrency), String(count)] }),
      },
      n,
      latencySamples,
    );
  } finally {
    await offload.close();
  }
}
