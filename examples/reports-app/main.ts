// `npm start`: the reports app, as it would run in production, in two processes on one machine:
// the web server (web.ts) and a worker (worker.ts), sharing the SQLite file in ./.offload/.
// Prints the URL. SIGINT (Ctrl-C) or SIGTERM stops both and waits for them; if either dies,
// the other is stopped too, so nothing is left running.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { withoutPassword } from "../../src/core/errors.ts";
import { backendUrl, dataDir, ensureDataDirs } from "./config.ts";

/** A child that ignores SIGTERM this long is killed. */
const STOP_TIMEOUT_MS = 8_000;

ensureDataDirs();
const children = new Set<ChildProcess>();
let stopping = false;

function start(script: string, onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [join(import.meta.dirname, script)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, REPORTS_APP_DATA: dataDir },
  });
  children.add(child);
  if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
  child.once("exit", (code, signal) => {
    children.delete(child);
    if (!stopping) {
      console.error(`${script} exited (${signal ?? code}); stopping the app`);
      void stopAll(1);
    }
  });
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all([...children].map(stopChild));
  process.exit(code);
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

const url = await new Promise<string>((resolve) => {
  const web = start("web.ts", (line) => {
    const match = /^listening (\S+)$/.exec(line);
    if (match?.[1]) resolve(match[1]);
    else console.log(line);
  });
  web.once("exit", () => resolve(""));
});
if (url) {
  const worker = start("worker.ts", (line) => console.log(line));
  const web = [...children][0];
  console.log(`\n  Reports app: ${url}\n  web pid ${web?.pid}, worker pid ${worker.pid}; data in ${dataDir}\n  jobs in ${withoutPassword(backendUrl)}\n  Ctrl-C stops both.\n`);
}
