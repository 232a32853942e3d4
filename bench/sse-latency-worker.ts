// The worker half of bench/sse-latency.ts, in its own process: runs one task that reports
// progress N times, stamping each report with the high-resolution wall time it was made at.
import { setTimeout as delay } from "node:timers/promises";
import { Offload } from "../src/index.ts";

const [url] = process.argv.slice(2);
if (!url) throw new Error("usage: sse-latency-worker.ts <backend-url>");

const offload = new Offload({ backend: url });
offload.task({
  name: "bench.sse-latency",
  async run(payload: { count: number; intervalMs: number }, ctx) {
    for (let i = 1; i <= payload.count; i++) {
      // Spaced out so each report is measured on its own, not coalesced with the next.
      await delay(payload.intervalMs);
      await ctx.progress(i / payload.count, String(performance.timeOrigin + performance.now()));
    }
    return payload.count;
  },
});
const worker = offload.worker({ concurrency: 1, poll: "100ms" });
await worker.start();
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void offload.close().then(() => process.exit(0));
});
