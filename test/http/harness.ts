// One web side (this process: an Offload with no worker, the HTTP handlers on a real port) and
// one worker in a child process, on the same backend URL. Whatever the tests see of a job's
// progress crossed a process boundary.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type JobsHttp, createJobsHttp, toNodeListener } from "../../src/http/index.ts";
import type { Offload } from "../../src/index.ts";
import { FakeClock } from "../../src/testing/index.ts";
import { type TestTasks, defineTestTasks, testOffload } from "./fixtures/tasks.ts";

export const SECRET = "test-secret-0123456789abcdef";
export const OWNER_HEADER = "x-test-user";

export interface Harness {
  readonly offload: Offload;
  readonly tasks: TestTasks;
  readonly http: JobsHttp;
  /** The clock behind token and URL expiry. */
  readonly clock: FakeClock;
  readonly origin: string;
  readonly workerPid: number;
  /** Releases `steps` gated steps of a job in the worker process. */
  go(jobId: string, steps?: number): void;
  close(): Promise<void>;
}

export async function startHarness(url: string): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "offload-http-"));
  const artifacts = join(dir, "artifacts");
  const offload = testOffload(url, artifacts);
  // The web side only enqueues: its tasks never run here, so the gate is never called.
  const tasks = defineTestTasks(offload, () => Promise.reject(new Error("no worker in the web process")));
  const clock = new FakeClock(Date.now());
  const http = createJobsHttp({
    offload, secret: SECRET, clock, pollInterval: "1s",
    // The test's "session": a header naming the user; an owned job is theirs alone.
    authorize: (request, job) => job.owner === undefined || request.headers.get(OWNER_HEADER) === job.owner,
  });
  const server = createServer(toNodeListener(async (request) => {
    const path = new URL(request.url).pathname;
    if (request.method === "POST" && path === "/reports") {
      const owner = request.headers.get(OWNER_HEADER) ?? undefined;
      const job = await tasks.steps.enqueue({ steps: 2 }, { owner });
      return http.accepted(job, { body: { kind: "report" } });
    }
    return http.fetch(request);
  }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const worker = await spawnWorker(url, artifacts);
  return {
    offload, tasks, http, clock,
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    workerPid: worker.pid,
    go: (jobId, steps = 1) => {
      for (let i = 0; i < steps; i++) worker.child.stdin.write(`go ${jobId}\n`);
    },
    async close() {
      await stopWorker(worker.child);
      await closeServer(server);
      await offload.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function spawnWorker(url: string, artifacts: string): Promise<{ child: ChildProcessWithoutNullStreams; pid: number }> {
  const script = join(import.meta.dirname, "fixtures", "worker-process.ts");
  const child = spawn(process.execPath, [script, url, artifacts], { stdio: ["pipe", "pipe", "pipe"] });
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(`[worker] ${chunk.toString()}`));
  const lines = createInterface({ input: child.stdout });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`worker process exited early (${code})`)));
    lines.on("line", (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
  });
  return { child, pid };
}

function stopWorker(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
