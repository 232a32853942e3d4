// BullMQ and bee-queue, measured the way bench/offload-suite.ts measures Offload: enqueue one at
// a time, batched enqueue, drain at concurrency 1 and 50 in a worker process, and enqueue→start
// latency into an idle worker in another process. Both run with their defaults (jobs and their
// results are kept after completion), the fairest match for Offload keeping every result.
// This file is also the worker process:  node bench/redis-peers.ts <peer> <url> <prefix> <drain|latency> <queue> <concurrency> [count]
import { Queue as BullQueue, Worker as BullWorker } from "bullmq";
import BeeQueue from "bee-queue";
import type { OffloadFigures } from "./offload-suite.ts";
import { type ChildMessage, drainInChild, percentile, perSecond, startChild, timed, wallNow } from "./measure.ts";

export type RedisPeer = "bullmq" | "bee-queue";

const BATCH = 1_000;
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

async function drain(peer: RedisPeer, url: string, prefix: string, queue: string, concurrency: number, count: number): Promise<{ rate: number; rss: number }> {
  return drainInChild(SELF, [peer, url, prefix, "drain", queue, String(concurrency), String(count)]);
}

export async function measureRedisPeer(peer: RedisPeer, url: string, prefix: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const single = enqueuer(peer, url, prefix, "bench-single");
  const batch = enqueuer(peer, url, prefix, "bench-batch");
  const latency = enqueuer(peer, url, prefix, "bench-latency");
  try {
    const oneMs = await timed(async () => {
      for (let i = 0; i < n; i++) await single.one(i);
    });
    const batchMs = await timed(async () => {
      for (let i = 0; i < n; i += BATCH) await batch.many(Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => i + k));
    });
    const drain1 = await drain(peer, url, prefix, "bench-single", 1, n);
    const drain50 = await drain(peer, url, prefix, "bench-batch", 50, n);

    const latencies: number[] = [];
    let onStart: (at: number) => void = () => {};
    const child = startChild(SELF, [peer, url, prefix, "latency", "bench-latency", "10"], (m) => {
      if (m.type === "started") onStart(m.at);
    });
    await child.ready;
    for (let i = 0; i < latencySamples; i++) {
      const started = new Promise<number>((resolve) => (onStart = resolve));
      const sentAt = wallNow();
      await latency.one(i);
      latencies.push((await started) - sentAt);
    }
    await child.stop();
    return {
      enqueueOne: perSecond(n, oneMs), enqueueBatch: perSecond(n, batchMs), drain1: drain1.rate, drain50: drain50.rate,
      latencyP50: percentile(latencies, 50), latencyP99: percentile(latencies, 99), workerRssMiB: drain50.rss,
    };
  } finally {
    await Promise.all([single.close(), batch.close(), latency.close()]);
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
