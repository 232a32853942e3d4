// offload/http on plain node:http, no framework.
//   node examples/http-node/main.ts   then   curl -i -X POST localhost:3004/reports
import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { createJobsHttp, sendResponse, toNodeListener } from "../../src/http/index.ts";
import { EXAMPLE_SECRET, makeExampleOffload, stepsFrom } from "../http-common/report-task.ts";

export async function start(options: { backend?: string; port?: number } = {}) {
  const { offload, report } = makeExampleOffload(options.backend);
  const http = createJobsHttp({ offload, secret: EXAMPLE_SECRET });
  const jobs = toNodeListener(http.fetch);
  const server: Server = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/reports") {
      void (async () => {
        const job = await report.enqueue({ steps: stepsFrom(await jsonBody(req)) });
        await sendResponse(res, http.accepted(job)); // 202, Location: /jobs/:id, links and a token
      })().catch(() => res.writeHead(500).end());
    } else if (req.url?.startsWith(`${http.basePath}/`)) {
      jobs(req, res);
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"NOT_FOUND","message":"not found"}}');
    }
  });
  const worker = offload.worker(); // in production, a separate process (`offload worker`)
  await worker.start();
  await new Promise<void>((resolve) => server.listen(options.port ?? 3004, resolve));
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

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse(await text(req)) as unknown;
  } catch {
    return {};
  }
}

if (import.meta.main) console.log(`node:http example on ${(await start()).url}`);
