// `offload worker`: flags, app module shapes and what it prints, run as a real process.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { makeApp } from "../process/fixtures/app.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const APP = fileURLToPath(new URL("../process/fixtures/app.ts", import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Runs the CLI to its end; a worker that starts instead of refusing is killed after `timeout`. */
function offload(url: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, "--backend", url, ...args], { encoding: "utf8", timeout: 10_000, killSignal: "SIGKILL" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts `offload worker`, resolves once it printed its start line; `stop` sends a signal. */
async function runningWorker(url: string, args: readonly string[], app = APP, quiet = true): Promise<{ banner: string; stop: (signal: NodeJS.Signals) => Promise<{ code: number | null; output: string }> }> {
  const child = spawn(process.execPath, [CLI, "--backend", url, "worker", app, ...(quiet ? ["--quiet"] : []), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      const line = output.split("\n").find((l) => l.startsWith("offload worker "));
      if (line !== undefined) resolve(line);
    });
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    void exited.then((code) => reject(new Error(`worker exited (${code}) before starting:\n${output}`)));
  });
  return {
    banner,
    stop: async (signal) => {
      child.kill(signal);
      return { code: await exited, output };
    },
  };
}

describe("offload worker", () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-cli-worker-"));
  const url = `sqlite://${join(dir, "jobs.db")}`;
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses --queues that names no queue, instead of working every queue", () => {
    const r = offload(url, "worker", APP, "--queues", " , ");
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /--queues names no queue/);
  });

  it("names the flag when --lease or --grace is not a duration", () => {
    const lease = offload(url, "worker", APP, "--lease", "soon");
    assert.equal(lease.code, 2);
    assert.match(lease.err, /ConfigError: --lease must look like/);
    const zero = offload(url, "worker", APP, "--lease", "0s");
    assert.equal(zero.code, 2);
    assert.match(zero.err, /ConfigError: --lease must be longer than 0/);
    // A number alone is no duration here: in code it means ms, but typed after --lease it meant seconds.
    const bare = offload(url, "worker", APP, "--lease", "30");
    assert.equal(bare.code, 2);
    assert.match(bare.err, /ConfigError: --lease must look like "500ms", "2s"/);
    const grace = offload(url, "worker", APP, "--grace", "soon");
    assert.equal(grace.code, 2);
    assert.match(grace.err, /ConfigError: --grace must look like/);
  });

  it("loads an app compiled to CommonJS whose Offload is its default export", async () => {
    // The warning about a queue no task uses lists the tasks' queues: the app's tasks were read.
    const worker = await runningWorker(url, ["--queues", "typo"], fixture("cjs-default-app.cjs"));
    const { code, output } = await worker.stop("SIGTERM");
    assert.equal(code, 0, output);
    assert.match(output, /no task of .* uses queue typo and no job was sent to it yet: a typo\? Working it anyway \(known: work; queues with jobs: none\)/);
  });

  it("works a queue that no task declares and no job was sent to yet (a fresh deploy), saying so", async () => {
    const own = `sqlite://${join(dir, "fresh.db")}`;
    const app = makeApp(own);
    try {
      const worker = await runningWorker(own, ["--queues", "urgent"]);
      try {
        const job = await app.count.enqueue({ n: 8 }, { queue: "urgent" });
        assert.equal(await job.result({ timeout: "10s" }), 8);
      } finally {
        const { code, output } = await worker.stop("SIGTERM");
        assert.equal(code, 0, output);
        assert.match(output, /uses queue urgent and no job was sent to it yet: a typo\?/);
      }
    } finally {
      await app.offload.close();
    }
  });

  it("prints its start line before the lines of the jobs it starts, those its first claim brings included", async () => {
    const own = `sqlite://${join(dir, "waiting.db")}`;
    const app = makeApp(own);
    try {
      const jobs = await app.count.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ n })));
      const worker = await runningWorker(own, ["--queues", "work"], APP, false);
      try {
        for (const job of jobs) await job.result({ timeout: "10s" });
      } finally {
        const { code, output } = await worker.stop("SIGTERM");
        assert.equal(code, 0, output);
        const lines = output.split("\n");
        assert.match(lines[0] ?? "", /^offload worker /, output);
        assert.equal(lines.filter((l) => /\sstarted\s/.test(l)).length, 20, output);
      }
    } finally {
      await app.offload.close();
    }
  });

  it("works a queue that no task declares once jobs were sent to it (enqueue with a queue override)", async () => {
    const own = `sqlite://${join(dir, "override.db")}`;
    const app = makeApp(own);
    try {
      const job = await app.count.enqueue({ n: 7 }, { queue: "urgent" });
      const worker = await runningWorker(own, ["--queues", "urgent"]);
      try {
        assert.equal(await job.result({ timeout: "10s" }), 7);
      } finally {
        const { code, output } = await worker.stop("SIGTERM");
        assert.equal(code, 0, output);
      }
    } finally {
      await app.offload.close();
    }
  });

  it("refuses an app exporting two Offload instances, neither default nor `offload`, instead of guessing", () => {
    const r = offload(url, "worker", fixture("two-offloads.ts"));
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /exports 2 Offload instances \(mail, reports\)/);
  });

  it("says so when the app's Offload comes from another copy of the library, instead of saying it exports none", () => {
    const r = offload(url, "worker", fixture("other-copy-app.ts"));
    assert.equal(r.code, 2, r.out + r.err);
    assert.doesNotMatch(r.err, /exports no Offload instance/);
    assert.match(r.err, /exports offload, an Offload of another copy of the library than this command's/);
  });

  it("warns when the app's Offload names a backend of its own, so --backend is not used", async () => {
    const own = `sqlite://${join(dir, "own.db")}`;
    const child = spawn(process.execPath, [CLI, "--backend", url, "worker", fixture("own-backend-app.ts"), "--quiet"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, OFFLOAD_TEST_OWN_BACKEND: own },
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("offload worker ")) resolve();
      });
      void exited.then((code) => reject(new Error(`worker exited (${code}) before starting:\n${out}${err}`)));
    });
    child.kill("SIGTERM");
    assert.equal(await exited, 0, out + err);
    assert.match(out, new RegExp(`backend ${own.replaceAll(".", "\\.")}`));
    assert.match(err, new RegExp(`--backend ${url.replaceAll(".", "\\.")} is not used: .* names its own backend`));
  });

  it("its start line names the queues it works, each once, and hides the backend password", async () => {
    const worker = await runningWorker(`${url}?password=hunter2`, ["--queues", "work,work"]);
    const { code, output } = await worker.stop("SIGTERM");
    assert.equal(code, 0, output);
    assert.match(worker.banner, /queues work, concurrency/);
    assert.doesNotMatch(output, /hunter2/);
    assert.match(worker.banner, /password=\*\*\*/);
  });

  it("a SIGTERM while the app module still loads stops it before it starts: exit 0, nothing claimed", async () => {
    const child = spawn(process.execPath, [CLI, "--backend", url, "worker", fixture("slow-loading-app.ts")], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let signalled = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      if (output.includes("app loading") && !signalled) {
        signalled = true;
        child.kill("SIGTERM");
      }
      if (output.includes("offload worker ")) child.kill("SIGKILL"); // it started working after all
    });
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    assert.deepEqual(await exited, { code: 0, signal: null }, output);
    assert.doesNotMatch(output, /offload worker /);
  });

  it("SIGINT stops it as SIGTERM does: exit 0", async () => {
    const worker = await runningWorker(url, []);
    const { code, output } = await worker.stop("SIGINT");
    assert.equal(code, 0, output);
    assert.match(output, /SIGINT: stopping/);
  });
});
