// graphile-worker and pg-boss, measured the way bench/offload-suite.ts measures Offload: enqueue
// one at a time, batched enqueue, drain at concurrency 1 and 50 in a worker process, and
// enqueue→start latency into an idle worker in another process.
import { makeWorkerUtils } from "graphile-worker";
import { PgBoss } from "pg-boss";
import type { OffloadFigures } from "./offload-suite.ts";
import { measureSystem } from "./measure.ts";

export type Peer = "graphile" | "graphile-tuned" | "pg-boss";

const CHILD = new URL("./postgres-peer-child.ts", import.meta.url);

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

export async function measurePeer(peer: Peer, url: string, schema: string, n: number, latencySamples = 300): Promise<OffloadFigures> {
  const queues = { single: "bench_single", batch: "bench_batch", latency: "bench_latency" };
  const enqueue = peer === "pg-boss" ? await pgBossEnqueuer(url, schema, Object.values(queues)) : await graphileEnqueuer(url, schema);
  try {
    return await measureSystem(
      {
        queues,
        enqueueOne: (task, i) => enqueue.one(task, i),
        enqueueMany: (task, items) => enqueue.many(task, items),
        child: (mode, task, concurrency, count) => ({ script: CHILD, args: [peer, url, schema, mode, task, String(concurrency), String(count)] }),
      },
      n,
      latencySamples,
    );
  } finally {
    await enqueue.close();
  }
}
