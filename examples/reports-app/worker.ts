// The reports app's worker process: runs every task of tasks.ts until SIGINT or SIGTERM, then
// finishes (or hands back) what it is running and exits.
import { ensureDataDirs } from "./config.ts";
import { offload } from "./tasks.ts";

ensureDataDirs();
const worker = offload.worker({ concurrency: 8, shutdownGrace: "3s" });
worker.on("error", (error) => console.error(`worker: ${error.message}`));
worker.on("job", (event) => {
  if (event.type !== "started") console.log(`worker: ${event.job.task} ${event.job.id.slice(-6)} ${event.type}`);
});
try {
  await worker.start();
} catch (error) {
  // A backend that cannot be opened (a wrong URL, a server down) is one line to act on, not a stack.
  console.error(`worker: cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
console.log(`worker: running (pid ${process.pid})`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void offload.close().then(() => process.exit(0));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
