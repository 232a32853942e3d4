// Starting real `offload worker` processes for tests, and waiting on what they report.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Milestone } from "./fixtures/app.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const APP = fileURLToPath(new URL("./fixtures/app.ts", import.meta.url));

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves on the next milestone matching `where`. */
  next(where: (m: Milestone) => boolean): Promise<Milestone>;
  output(): string;
}

export function startWorker(url: string, args: readonly string[], effects: string): WorkerProcess {
  const child = spawn(process.execPath, [CLI, "--backend", url, "worker", APP, "--quiet", ...args], {
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    env: { ...process.env, OFFLOAD_TEST_EFFECTS: effects },
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const seen: Milestone[] = [];
  const waiters: Array<{ where: (m: Milestone) => boolean; resolve: (m: Milestone) => void }> = [];
  child.on("message", (m: Milestone) => {
    const waiter = waiters.find((w) => w.where(m));
    if (!waiter) {
      seen.push(m);
      return;
    }
    waiters.splice(waiters.indexOf(waiter), 1);
    waiter.resolve(m);
  });
  return {
    child,
    exited,
    output: () => output,
    next: (where) => {
      const already = seen.find(where);
      if (already) {
        seen.splice(seen.indexOf(already), 1);
        return Promise.resolve(already);
      }
      return new Promise((resolve, reject) => {
        waiters.push({ where, resolve });
        void exited.then((code) => reject(new Error(`worker exited (${code}) before the milestone; output:\n${output}`)));
      });
    },
  };
}

/** Kills any worker still running (for `after` hooks). */
export async function killAll(workers: readonly WorkerProcess[]): Promise<void> {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
  await Promise.all(workers.map((w) => w.exited));
}
