// graphile-worker and pg-boss, measured the way bench/offload-suite.ts measures Offload: enqueue
// one at a time, batched enqueue, drain at concurrency 1 and 50 in a worker process, and
// enqueue→start latency into an idle worker in another process.
import { makeWorkerUtils } from "graphile-worker";
import { PgBoss } from "pg-boss";
import type { OffloadFigures } from "./offload-suite.ts";
import { drainInChild, percentile, perSecond, startChild, timed, wallNow } from "./measure.ts";

export type Peer = "graphile" | "graphile-tuned" | "pg-boss";

const CHILD = new URL("./postgres-peer-child.ts", import.meta.url);
const BATCH = 1_000;

interface Enqueuer {
  one(task: string, i: number): Promise<void>;
  many(task: string, items: number[]): Promise<void>;
  close(): Promise<void>;
}

async function graphileEnqueuer(url: string, schema: string): Promise<Enqueuer> {
  const utils = await makeWorkerUtils({ connectionString: url, schema });
  await utils.migrate();
  return {
    one: async (task, i) => {
      await utils.addJob(task, { i });
    },
    many: async (task, items) => {
      await utils.addJobs(items.map((i) => ({ identifier: task, payload: { i } })));
    },
    close: async () => {
      await utils.release();
    },
  };
}

async function pgBossEnqueuer(url: string, schema: string, tasks: readonly string[]): Promise<Enqueuer> {
  const boss = new PgBoss({ connectionString: url, schema, useListenNotify: true });
  boss.on("error", (e) => console.error(`pg-boss: ${e.message}`));
  await boss.start();
  for (const task of tasks) await boss.createQueue(task, { notify: true });
  return {
    one: async (task, i) => {
      await boss.send(task, { i });
    },
    many: async (task, items) => {
      await boss.insert(task, items.map((i) => ({ data: { i } })));
    },
    close: () => boss.stop({ graceful: false }),
  };
}

async function drain(peer: Peer, url: string, schema: string, task: string, concurrency: number, count: number): Promise<{ rate: number; rss: number }> {
  return drainInChild(CHILD, [peer, url, schema, "drain", task, String(concurrency), String(count)]);
}

export async function measurePeer(peer: Peer, url: string, schema: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const tasks = ["bench_single", "bench_batch", "bench_latency"];
  const enqueue = peer === "pg-boss" ? await pgBossEnqueuer(url, schema, tasks) : await graphileEnqueuer(url, schema);
  try {
    const oneMs = await timed(async () => {
      for (let i = 0; i < n; i++) await enqueue.one("bench_single", i);
    });
    const batchMs = await timed(async () => {
      for (let i = 0; i < n; i += BATCH) await enqueue.many("bench_batch", Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => i + k));
    });
    const drain1 = await drain(peer, url, schema, "bench_single", 1, n);
    const drain50 = await drain(peer, url, schema, "bench_batch", 50, n);

    const latencies: number[] = [];
    let onStart: (at: number) => void = () => {};
    const child = startChild(CHILD, [peer, url, schema, "latency", "bench_latency", "10"], (m) => {
      if (m.type === "started") onStart(m.at);
    });
    await child.ready;
    for (let i = 0; i < latencySamples; i++) {
      const started = new Promise<number>((resolve) => (onStart = resolve));
      const sentAt = wallNow();
      await enqueue.one("bench_latency", i);
      latencies.push((await started) - sentAt);
    }
    await child.stop();
    return {
      enqueueOne: perSecond(n, oneMs), enqueueBatch: perSecond(n, batchMs), drain1: drain1.rate, drain50: drain50.rate,
      latencyP50: percentile(latencies, 50), latencyP99: percentile(latencies, 99), workerRssMiB: drain50.rss,
    };
  } finally {
    await enqueue.close();
  }
}
