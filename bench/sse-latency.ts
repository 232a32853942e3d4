// Latency from ctx.progress() in a worker process to the event arriving at an SSE client.
//
//   node bench/sse-latency.ts [backend-url] [--count 300] [--interval 15]
//
// Default backend: a fresh SQLite file. Pass redis://… or postgres://… to measure those (the
// backend must be shared across processes). The web side (offload/http on node:http) runs in
// this process with the SSE client; the worker runs in a child process, so every event crosses
// the backend's change signal, as in production.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createJobsHttp, toNodeListener } from "../src/http/index.ts";
import { Offload } from "../src/index.ts";
import { openSse } from "../test/http/sse-client.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { count: { type: "string", default: "300" }, interval: { type: "string", default: "15" } },
});
const count = Number(values.count);
const intervalMs = Number(values.interval);
const dir = mkdtempSync(join(tmpdir(), "offload-sse-bench-"));
const url = positionals[0] ?? `sqlite://${join(dir, "bench.db")}`;

const offload = new Offload({ backend: url });
const task = offload.task<{ count: number; intervalMs: number }, number>({ name: "bench.sse-latency", run: () => 0 });
const http = createJobsHttp({ offload, secret: "bench-secret-0123456789abcdef" });
const server = createServer(toNodeListener(http.fetch));
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const child = spawn(process.execPath, [join(import.meta.dirname, "sse-latency-worker.ts"), url], { stdio: ["ignore", "pipe", "inherit"] });
await new Promise<void>((resolve) => createInterface({ input: child.stdout }).on("line", (l) => l === "ready" && resolve()));

const job = await task.enqueue({ count, intervalMs });
const sse = await openSse(`${origin}/jobs/${job.id}/events`);
const latencies: number[] = [];
for (;;) {
  const message = await sse.next();
  if (!message || message.event === "result") break;
  if (message.event !== "progress") continue;
  const sentAt = Number((JSON.parse(message.data) as { message: string }).message);
  latencies.push(performance.timeOrigin + performance.now() - sentAt);
}
sse.close();

latencies.sort((a, b) => a - b);
const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
const backend = url.replace(/\/\/[^@/]*@/, "//***@").replace(/^(sqlite:\/\/).*/, "$1<temp file>");
console.log(`SSE latency, ctx.progress() in a worker process → SSE client (${backend}, ${latencies.length} events, every ${intervalMs} ms)`);
console.log(`  p50 ${pct(50).toFixed(1)} ms   p90 ${pct(90).toFixed(1)} ms   p99 ${pct(99).toFixed(1)} ms   max ${pct(100).toFixed(1)} ms`);

child.kill("SIGTERM");
await new Promise((resolve) => child.once("exit", resolve));
server.closeAllConnections();
server.close();
await offload.close();
rmSync(dir, { recursive: true, force: true });
