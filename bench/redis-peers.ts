// BullMQ and bee-queue, measured the way bench/offload-suite.ts measures Offload: enqueue one at
// a time, batched enqueue, drain at concurrency 1 and 50 in a worker process, and enqueue→start
// latency into an idle worker in another process. Both run with their defaults (jobs and their
// results are kept after completion), the fairest match for Offload keeping every result.
// This file is also the worker process:  node bench/redis-peers.ts <peer> <url> <prefix> <drain|latency> <queue> <concurrency> [count]
import { Queue as BullQueue, Worker as BullWorker } from "bullmq";
import BeeQueue from "bee-queue";
import type { OffloadFigures } from "./offload-suite.ts";
import { type ChildMessage, measureSystem, wallNow } from "./measure.ts";

export type RedisPeer = "bullmq" | "bee-queue";

const SELF = new URL(import.meta.url);

interface Enqueuer {
  one(i: number): Promise<void>;
  many(items: number[]): Promise<void>;
  close(): Promise<void>;
}

function connection(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) };
}

function enqueuer(peer: RedisPeer, url: string, prefix: string, queue: string): Enqueuer {
  if (peer === "bullmq") {
    const q = new BullQueue(queue, { connection: { ...connection(url), maxRetriesPerRequest: null }, prefix });
    return {
      one: async (i) => {
        await q.add("noop", { i });
      },
      many: async (items) => {
        await q.addBulk(items.map((i) => ({ name: "noop", data: { i } })));
      },
      close: () => q.close(),
    };
  }
  const q = new BeeQueue(queue, { redis: connection(url), prefix, isWorker: false, getEvents: false });
  return {
    one: async (i) => {
      await q.createJob({ i }).save();
    },
    many: async (items) => {
      await q.saveAll(items.map((i) => q.createJob({ i })));
    },
    close: () => q.close(),
  };
}

export async function measureRedisPeer(peer: RedisPeer, url: string, prefix: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const queues = { single: "bench-single", batch: "bench-batch", latency: "bench-latency" };
  const enqueuers = new Map(Object.values(queues).map((q) => [q, enqueuer(peer, url, prefix, q)]));
  const of = (queue: string): Enqueuer => {
    const e = enqueuers.get(queue);
    if (!e) throw new Error(`no enqueuer for ${queue}`);
    return e;
  };
  try {
    return await measureSystem(
      {
        queues,
        enqueueOne: (queue, i) => of(queue).one(i),
        enqueueMany: (queue, items) => of(queue).many(items),
        child: (mode, queue, concurrency, count) => ({ script: SELF, args: [peer, url, prefix, mode, queue, String(concurrency), String(count)] }),
      },
      n,
      latencySamples,
    );
  } finally {
    await Promise.all([...enqueuers.values()].map((e) => e.close()));
  }
}

/** The worker process: drains `count` jobs, or reports each job's start time (latency). */
async function child(argv: readonly string[]): Promise<void> {
  const [peer = "bullmq", url = "", prefix = "", mode = "drain", queue = "", concurrencyText = "50", countText = "0"] = argv;
  const send = (m: ChildMessage): void => {
    process.send?.(m);
  };
  const count = Number(countText);
  const concurrency = Number(concurrencyText);
  let seen = 0;
  let first = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const handle = (): null => {
    if (mode === "latency") send({ type: "started", at: wallNow(), id: "" });
    else if (first === 0) first = performance.now();
    return null;
  };
  const succeeded = (): void => {
    if (mode === "drain" && ++seen === count) finish();
  };
  let close: () => Promise<void>;
  if (peer === "bullmq") {
    const worker = new BullWorker(queue, async () => handle(), { connection: { ...connection(url), maxRetriesPerRequest: null }, prefix, concurrency });
    worker.on("completed", succeeded);
    await worker.waitUntilReady();
    close = () => worker.close();
  } else {
    const q = new BeeQueue(queue, { redis: connection(url), prefix, getEvents: false });
    q.on("succeeded", succeeded);
    q.process(concurrency, async () => handle());
    await q.ready();
    close = () => q.close();
  }
  process.once("SIGTERM", () => {
    void close().then(() => process.exit(0));
  });
  send({ type: "ready" });
  if (mode === "drain") {
    await finished;
    send({ type: "drained", ms: performance.now() - first, count, maxRssMiB: process.resourceUsage().maxRSS / 1024 });
  }
}

if (import.meta.main) await child(process.argv.slice(2));
