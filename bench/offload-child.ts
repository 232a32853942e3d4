// A worker process for the Offload benchmarks: `drain` works through N no-op jobs and reports the
// time and its peak RSS; `latency` reports the wall time at which each job started.
//   node bench/offload-child.ts <backend-url> <drain|latency> <queue> <concurrency> [count]
import { Offload } from "../src/index.ts";
import { type ChildMessage, wallNow } from "./measure.ts";

const [url = "", mode = "drain", queue = "bench", concurrencyText = "50", countText = "0"] = process.argv.slice(2);
const send = (m: ChildMessage): void => {
  process.send?.(m);
};

const offload = new Offload({ backend: url });
let seen = 0;
let first = 0;
const count = Number(countText);
let finish: () => void = () => {};
const finished = new Promise<void>((resolve) => (finish = resolve));

offload.task({
  name: "bench.noop",
  queue,
  run: (_payload: unknown, ctx) => {
    if (mode === "latency") send({ type: "started", at: wallNow(), id: ctx.job.id });
    return null;
  },
});

const worker = offload.worker({ queues: [queue], concurrency: Number(concurrencyText) });
worker.on("job", (e) => {
  if (e.type !== "succeeded" || mode !== "drain") return;
  if (seen === 0) first = performance.now();
  if (++seen === count) finish();
});
// The drain clock starts at the first claim, so process start-up is not counted.
worker.once("job", () => {
  if (first === 0) first = performance.now();
});

process.once("SIGTERM", () => {
  void worker.stop().then(() => offload.close()).then(() => process.exit(0));
});

await worker.start();
send({ type: "ready" });
if (mode === "drain") {
  await finished;
  const ms = performance.now() - first;
  send({ type: "drained", ms, count, maxRssMiB: process.resourceUsage().maxRSS / 1024 });
}
