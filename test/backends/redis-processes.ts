// redis-server processes a test file starts itself, on free loopback ports with a temp dir of
// their own, so nothing touches the shared server. Each is stopped by `stopAll()` (or earlier).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { until } from "../support/until.ts";

export const run = promisify(execFile);

export { freePort } from "../support/ports.ts";
export { until };

export class RedisProcesses {
  readonly dir = mkdtempSync(join(tmpdir(), "offload-redis-"));
  readonly #running = new Set<ChildProcess>();

  /** Starts redis-server and resolves once it accepts connections (it says so on stdout). */
  start(port: number, args: string[] = []): Promise<ChildProcess> {
    return this.#spawn(port, ["--port", String(port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", "", ...args], "Ready to accept connections");
  }

  /** A one-node Redis Cluster holding every slot, ready for clients; `args` go to its redis-server. */
  async startClusterNode(port: number, args: string[] = []): Promise<ChildProcess> {
    const child = await this.start(port, ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-announce-ip", "127.0.0.1", ...args]);
    await run("redis-cli", ["-p", String(port), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    await until(async () => (await run("redis-cli", ["-p", String(port), "CLUSTER", "INFO"])).stdout.includes("cluster_state:ok"), "cluster state ok", 50);
    return child;
  }

  /**
   * Starts redis-server in sentinel mode, watching `master` as group `name`, with quorum 1;
   * `config` lines follow ours (a later line wins).
   */
  startSentinel(port: number, name: string, master: number, config: readonly string[] = []): Promise<ChildProcess> {
    const file = join(this.dir, `sentinel-${port}.conf`); // Sentinel rewrites its own config file
    writeFileSync(file, [
      `port ${port}`, "bind 127.0.0.1", `dir ${this.dir}`, ...config,
      `sentinel monitor ${name} 127.0.0.1 ${master} 1`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 10000`,
    ].join("\n"));
    return this.#spawn(port, [file, "--sentinel"], `+monitor master ${name}`);
  }

  async stop(child: ChildProcess): Promise<void> {
    this.#running.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#running].map((child) => this.stop(child)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #spawn(port: number, args: string[], ready: string): Promise<ChildProcess> {
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "inherit"] });
    this.#running.add(child);
    let out = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes(ready)) resolve();
      });
      child.once("exit", (code) => reject(new Error(`redis-server on ${port} exited (${code}): ${out.slice(-500)}`)));
    });
    child.stdout?.resume();
    return child;
  }
}
