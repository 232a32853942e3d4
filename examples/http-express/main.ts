// offload/http in an Express 5 app: toNodeListener() adapts the Web-standard handler.
//   node examples/http-express/main.ts   then   curl -i -X POST localhost:3002/reports
import express from "express";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createJobsHttp, sendResponse, toNodeListener, type JobsHttp } from "../../src/http/index.ts";
import type { Offload } from "../../src/index.ts";
import { EXAMPLE_SECRET, makeExampleOffload, stepsFrom } from "../http-common/report-task.ts";

export function createApp(offload: Offload, report: ReturnType<typeof makeExampleOffload>["report"]): { app: express.Express; http: JobsHttp } {
  const http = createJobsHttp({ offload, secret: EXAMPLE_SECRET });
  const app = express();
  app.post("/reports", express.json(), async (req, res) => {
    const job = await report.enqueue({ steps: stepsFrom(req.body) });
    await sendResponse(res, http.accepted(job)); // 202, Location: /jobs/:id, links and a token
  });
  // Express strips "/jobs" from req.url; the adapter routes on req.originalUrl, so this just works.
  app.use("/jobs", toNodeListener(http.fetch));
  return { app, http };
}

export async function start(options: { backend?: string; port?: number } = {}) {
  const { offload, report } = makeExampleOffload(options.backend);
  const { app, http } = createApp(offload, report);
  const worker = offload.worker(); // in production, a separate process (`offload worker`)
  await worker.start();
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(options.port ?? 3002, () => resolve(s));
  });
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}`,
    http,
    offload,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await offload.close();
    },
  };
}

if (import.meta.main) console.log(`Express example on ${(await start()).url}`);
