// offload/http in a Fastify 5 app: the /jobs routes hand the raw request and response to
// toNodeListener() (reply.hijack() tells Fastify the response is written elsewhere).
//   node examples/http-fastify/main.ts   then   curl -i -X POST localhost:3003/reports
import Fastify, { type FastifyInstance } from "fastify";
import type { AddressInfo } from "node:net";
import { createJobsHttp, toNodeListener, type JobsHttp } from "../../src/http/index.ts";
import type { Offload } from "../../src/index.ts";
import { EXAMPLE_SECRET, makeExampleOffload, stepsFrom } from "../http-common/report-task.ts";

export function createApp(offload: Offload, report: ReturnType<typeof makeExampleOffload>["report"]): { app: FastifyInstance; http: JobsHttp } {
  const http = createJobsHttp({ offload, secret: EXAMPLE_SECRET });
  const jobs = toNodeListener(http.fetch);
  const app = Fastify();
  app.post("/reports", async (request, reply) => {
    const job = await report.enqueue({ steps: stepsFrom(request.body) });
    const accepted = http.accepted(job); // 202, Location: /jobs/:id, links and a token
    accepted.headers.forEach((value, name) => {
      reply.header(name, value);
    });
    return reply.code(accepted.status).send(await accepted.json());
  });
  app.all("/jobs/*", (request, reply) => {
    reply.hijack();
    jobs(request.raw, reply.raw);
  });
  return { app, http };
}

export async function start(options: { backend?: string; port?: number } = {}) {
  const { offload, report } = makeExampleOffload(options.backend);
  const { app, http } = createApp(offload, report);
  const worker = offload.worker(); // in production, a separate process (`offload worker`)
  await worker.start();
  await app.listen({ port: options.port ?? 3003, host: "127.0.0.1" });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    http,
    offload,
    async close() {
      app.server.closeAllConnections();
      await app.close();
      await offload.close();
    },
  };
}

if (import.meta.main) console.log(`Fastify example on ${(await start()).url}`);
