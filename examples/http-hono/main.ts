// offload/http in a Hono app, served by @hono/node-server.
//   node examples/http-hono/main.ts   then   curl -i -X POST localhost:3001/reports
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { AddressInfo } from "node:net";
import { createJobsHttp, type JobsHttp } from "../../src/http/index.ts";
import type { Offload } from "../../src/index.ts";
import { EXAMPLE_SECRET, makeExampleOffload, stepsFrom } from "../http-common/report-task.ts";

export function createApp(offload: Offload, report: ReturnType<typeof makeExampleOffload>["report"]): { app: Hono; http: JobsHttp } {
  const http = createJobsHttp({ offload, secret: EXAMPLE_SECRET });
  const app = new Hono();
  app.post("/reports", async (c) => {
    const job = await report.enqueue({ steps: stepsFrom(await c.req.json<unknown>().catch(() => ({}))) });
    return http.accepted(job); // 202, Location: /jobs/:id, links and a token in the body
  });
  app.all("/jobs/*", (c) => http.fetch(c.req.raw));
  return { app, http };
}

export async function start(options: { backend?: string; port?: number } = {}) {
  const { offload, report } = makeExampleOffload(options.backend);
  const { app, http } = createApp(offload, report);
  const worker = offload.worker(); // in production, a separate process (`offload worker`)
  await worker.start();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 3001 }, () => resolve(s));
  });
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}`,
    http,
    offload,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await offload.close();
    },
  };
}

if (import.meta.main) console.log(`Hono example on ${(await start()).url}`);
