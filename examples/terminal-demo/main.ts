// `npm run demo:terminal`: a terminal tour of Offload on the embedded SQLite
// default. This process plays the web app: it enqueues jobs and returns at once. A worker runs in
// a separate process (`offload worker`), and this process follows every job live through the
// event feed, across the process boundary, until all of them are finished.
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Wakeup } from "../../src/core/wakeup.ts";
import { systemClock } from "../../src/core/clock.ts";
import { isFinished, type JobRecord } from "../../src/core/job.ts";

const dataDir = fileURLToPath(new URL("../../.offload/", import.meta.url));
mkdirSync(dataDir, { recursive: true });
for (const f of ["terminal-demo.db", "terminal-demo.db-wal", "terminal-demo.db-shm"]) rmSync(dataDir + f, { force: true });
process.env["OFFLOAD_URL"] = `sqlite://${dataDir}terminal-demo.db`;
const { offload, welcomeEmail, renderReport, deliverWebhook, sendDigest } = await import("./app.ts");

const color = (code: number, text: string): string => (process.stdout.isTTY ? `\x1b[${code}m${text}\x1b[0m` : text);
const STATE_COLOR: Record<string, number> = { scheduled: 36, queued: 37, active: 33, retrying: 35, succeeded: 32, failed: 31, cancelled: 90 };
const started = Date.now();
const clock = (): string => `+${((Date.now() - started) / 1000).toFixed(2)}s`.padStart(8);

console.log(color(1, "Offload terminal demo") + ` — backend ${offload.url}\n`);
console.log("The \"web app\" enqueues six jobs and answers at once:");
const jobs = [
  await welcomeEmail.enqueue({ to: "ada@example.com" }),
  await renderReport.enqueue({ reportId: "q3-sales" }, { priority: 5 }),
  await deliverWebhook.enqueue({ endpoint: "https://shop.example/hooks/flaky", failTimes: 2 }),
  await deliverWebhook.enqueue({ endpoint: "https://crm.example/hooks/down", failTimes: 99 }),
  await deliverWebhook.enqueue({ endpoint: "https://old.example/hooks/gone", failTimes: 0 }),
  await sendDigest.enqueue({ user: "ada" }, { delay: "3s" }),
];
const names = new Map<string, string>();
for (const job of jobs) {
  const record = await job.get();
  names.set(job.id, `${record.task.padEnd(16)} ${job.id.slice(-6)}`);
  console.log(`  202 Accepted  Location: /jobs/${job.id}  (${record.task}, ${record.state})`);
}

console.log(`\nStarting a worker in another process: offload worker examples/terminal-demo/app.ts\n`);
const cli = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const app = fileURLToPath(new URL("./app.ts", import.meta.url));
const worker = spawn(process.execPath, [cli, "worker", app, "--concurrency", "4", "--quiet"], { stdio: ["ignore", "ignore", "inherit"] });
const stopWorker = (): void => {
  if (worker.exitCode === null) worker.kill("SIGTERM");
};
process.on("SIGINT", () => {
  stopWorker();
  process.exit(130);
});

const backend = await offload.backend();
const wakeup = new Wakeup();
const unwatch = backend.watch(() => wakeup.notify());
let lastEvent = 0;
const finished = new Set<string>();
while (finished.size < jobs.length) {
  for (const e of await offload.jobs.events({ afterId: lastEvent, limit: 500 })) {
    lastEvent = e.id;
    const who = names.get(e.jobId) ?? e.jobId;
    if (e.type === "progress") {
      const p = Number(e.data["progress"]);
      const bar = "█".repeat(Math.round(p * 20)).padEnd(20, "·");
      console.log(`${clock()}  ${who}  ${bar} ${Math.round(p * 100)}% ${String(e.data["message"] ?? "")}`);
      continue;
    }
    if (e.type !== "state") continue;
    const state = String(e.data["state"]);
    let detail = state === "active" ? `attempt ${String(e.data["attempt"])}` : "";
    if (state === "retrying" || state === "failed") {
      const job: JobRecord = await offload.jobs.get(e.jobId);
      const last = job.errors.at(-1);
      detail = `${last?.message ?? ""}${state === "retrying" ? ` — retry in ${Math.max(0, job.runAt - Date.now())} ms (backoff with jitter)` : ` — dead letter after ${job.attempt} attempt(s)`}`;
    }
    console.log(`${clock()}  ${who}  ${color(STATE_COLOR[state] ?? 0, state.padEnd(9))} ${detail}`);
    if (isFinished(state as JobRecord["state"])) finished.add(e.jobId);
  }
  await wakeup.wait(250, systemClock);
}
unwatch();
stopWorker();

console.log(`\n${color(1, "Where things ended")} (offload queues):\n`);
const { queuesTable } = await import("../../src/cli/format.ts");
console.log(queuesTable(await offload.jobs.counts(), Date.now()));
const deadLetter = jobs[3];
console.log(`\nThe dead-letter job keeps every attempt's error. Look at it, or put it back:`);
console.log(`  npm run offload -- -b ${offload.url} jobs show ${deadLetter?.id ?? ""}`);
console.log(`  npm run offload -- -b ${offload.url} jobs replay --queue webhooks`);
await offload.close();
