// Starts the reports app the way `npm start` does (main.ts), on a free port and a fresh data
// folder, and tells the test its URL and the pids of everything it started.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export interface RunningApp {
  readonly url: string;
  readonly main: ChildProcess;
  /** main.ts and the web and worker processes it started. */
  readonly pids: readonly number[];
  /** Sends `signal` to main.ts; resolves with its exit code once it has exited. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
  /** Kills whatever still runs (main.ts, web and worker) and removes the data folder. */
  cleanup(): void;
}

/** `backend`: the OFFLOAD_BACKEND to run it on (a server URL); the SQLite file of its data folder if not given. */
export async function startReportsApp(backend?: string): Promise<RunningApp> {
  const data = mkdtempSync(join(tmpdir(), "reports-app-"));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: "0", REPORTS_APP_DATA: data };
  if (backend === undefined) delete env["OFFLOAD_BACKEND"];
  else env["OFFLOAD_BACKEND"] = backend;
  const main = spawn(process.execPath, [join(import.meta.dirname, "../../examples/reports-app/main.ts")], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => main.once("exit", (code) => resolve(code)));
  const { url, pids } = await new Promise<{ url: string; pids: number[] }>((resolve, reject) => {
    let url = "";
    void exited.then((code) => reject(new Error(`main.ts exited early (${code})`)));
    createInterface({ input: main.stdout! }).on("line", (line) => {
      url = /Reports app: (\S+)/.exec(line)?.[1] ?? url;
      const pids = /web pid (\d+), worker pid (\d+)/.exec(line);
      if (url && pids) resolve({ url, pids: [Number(pids[1]), Number(pids[2])] });
    });
  });
  return {
    url,
    main,
    pids: [main.pid ?? -1, ...pids],
    async stop(signal) {
      main.kill(signal);
      return exited;
    },
    cleanup() {
      // While main.ts runs, its children may too; SIGKILL to main.ts alone would leave the web
      // and worker processes running, orphaned. Once main.ts has exited, they are gone.
      if (main.exitCode === null && main.signalCode === null) {
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        main.kill("SIGKILL");
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
