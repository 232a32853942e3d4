// The `offload` command, run as a real process against a SQLite file.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Offload } from "../../src/index.ts";
import { drain } from "../../src/testing/index.ts";
import { freePort } from "../support/ports.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

function offload(url: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, "--backend", url, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("offload CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-cli-"));
  const url = `sqlite://${join(dir, "jobs.db")}`;
  const ids: Record<string, string> = {};
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The app whose jobs the commands act on: a "bounce" address fails, on its only attempt. */
  function mailApp() {
    const app = new Offload({ backend: url });
    const mail = app.task({ name: "mail.send", queue: "mail", retry: { attempts: 1 }, run: (p: { to: string }) => {
      if (p.to === "bounce") throw new Error("mailbox unavailable");
      return { sent: p.to };
    } });
    return { app, mail };
  }

  before(async () => {
    const { app, mail } = mailApp();
    ids["ok"] = (await mail.enqueue({ to: "ada" })).id;
    ids["bad"] = (await mail.enqueue({ to: "bounce" })).id;
    await drain(app);
    ids["waiting"] = (await mail.enqueue({ to: "later" }, { delay: "1h" })).id;
    await app.close();
  });

  it("--help on every command", () => {
    for (const args of [[], ["worker"], ["jobs"], ["jobs", "list"], ["jobs", "show"], ["jobs", "retry"], ["jobs", "cancel"], ["jobs", "replay"], ["queues"]]) {
      const r = offload(url, ...args, "--help");
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.out, /Usage: offload/);
    }
  });

  it("queues: counts per state and the oldest queued age", () => {
    const r = offload(url, "queues");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /QUEUE\s+SCHEDULED\s+QUEUED\s+ACTIVE\s+RETRYING\s+SUCCEEDED\s+FAILED\s+CANCELLED\s+OLDEST QUEUED/);
    assert.match(r.out, /mail\s+1\s+0\s+0\s+0\s+1\s+1\s+0\s+-/);
    const json = JSON.parse(offload(url, "queues", "--json").out) as Array<{ queue: string; counts: Record<string, number> }>;
    assert.equal(json[0]?.counts["failed"], 1);
  });

  it("jobs list filters by state and queue", () => {
    const failed = offload(url, "jobs", "list", "--state", "failed");
    assert.equal(failed.code, 0, failed.err);
    assert.match(failed.out, new RegExp(ids["bad"] ?? "x"));
    assert.doesNotMatch(failed.out, new RegExp(ids["ok"] ?? "x"));
    assert.equal(offload(url, "jobs", "list", "--queue", "mail", "--json").out.includes(ids["waiting"] ?? "x"), true);
  });

  it("jobs show prints the payload, and every attempt's error for a failed job", () => {
    const r = offload(url, "jobs", "show", ids["bad"] ?? "");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /state:\s+failed/);
    assert.match(r.out, /payload:\s+\{"to":"bounce"\}/);
    const shown = JSON.parse(offload(url, "jobs", "show", ids["bad"] ?? "", "--json").out) as { expiresAt: number };
    assert.match(r.out, new RegExp(`expires:\\s+${new Date(shown.expiresAt).toISOString()}`), "when retention prunes it");
    assert.match(r.out, /error \(attempt 1, .*\): Error: mailbox unavailable/);
  });

  it("jobs retry and jobs cancel act on one job; replay on many", async () => {
    assert.match(offload(url, "jobs", "retry", ids["bad"] ?? "").out, /queued again/);
    assert.match(offload(url, "jobs", "show", ids["bad"] ?? "").out, /state:\s+queued/);
    assert.match(offload(url, "jobs", "cancel", ids["waiting"] ?? "").out, /cancelled/);
    assert.match(offload(url, "jobs", "show", ids["waiting"] ?? "").out, /state:\s+cancelled/);
    assert.match(offload(url, "jobs", "replay", "--queue", "mail").out, /0 failed jobs queued again/);
    // Three failed jobs (the retried one fails again, beside two new ones): replay puts back all three.
    const { app, mail } = mailApp();
    const bounced = [ids["bad"] ?? "", ...(await mail.enqueueMany([{ to: "bounce" }, { to: "bounce" }])).map((j) => j.id)];
    assert.equal(await drain(app), 3);
    await app.close();
    assert.match(offload(url, "jobs", "replay", "--queue", "mail").out, /3 failed jobs queued again/);
    const queued = JSON.parse(offload(url, "jobs", "list", "--state", "queued", "--json").out) as Array<{ id: string }>;
    assert.deepEqual(queued.map((j) => j.id).sort(), [...bounced].sort());
    assert.equal(JSON.parse(offload(url, "jobs", "list", "--state", "failed", "--json").out).length, 0);
  });

  it("bad input: unknown flag, unknown queue, unknown job, bad state, bad backend", () => {
    const flag = offload(url, "jobs", "list", "--colour");
    assert.equal(flag.code, 2);
    assert.match(flag.err, /unknown option '--colour'/);
    const queue = offload(url, "jobs", "list", "--queue", "nope");
    assert.equal(queue.code, 2);
    assert.match(queue.err, /unknown queue nope \(queues with jobs: mail\)/);
    const job = offload(url, "jobs", "show", "01890000-0000-7000-8000-000000000000");
    assert.equal(job.code, 1);
    assert.match(job.err, /JobNotFoundError: job 01890000-0000-7000-8000-000000000000 not found/);
    assert.match(offload(url, "jobs", "list", "--state", "done").err, /--state must be one of scheduled, queued/);
    // A value a keystroke off gets the near-miss suggestion that a misspelt flag or command gets.
    assert.match(offload(url, "jobs", "list", "--state", "faild").err, /got "faild" \(did you mean failed\?\)/);
    assert.match(offload(url, "jobs", "list", "--queue", "mial").err, /unknown queue mial \(did you mean mail\?\) \(queues with jobs: mail\)/);
    const backend = offload("sqlite:///no/such/dir/x.db", "queues");
    assert.equal(backend.code, 1);
    assert.match(backend.err, /cannot open backend sqlite:\/\/\/no\/such\/dir\/x.db: folder \/no\/such\/dir does not exist/);
    assert.doesNotMatch(backend.err, /    at /, "no stack trace");
  });

  it("relay refuses a bad --batch or --lease as a usage error (exit 2) before opening a backend", () => {
    const missing = "sqlite:///no/such/dir/outbox.db"; // opening it would fail first
    const batch = offload(url, "relay", "--from", missing, "--to", missing, "--batch", "0");
    assert.equal(batch.code, 2, batch.err);
    assert.match(batch.err, /ConfigError: --batch must be a whole number ≥ 1, got "0"/);
    const lease = offload(url, "relay", "--from", missing, "--to", missing, "--lease", "soon");
    assert.equal(lease.code, 2, lease.err);
    assert.match(lease.err, /ConfigError: --lease must look like/);
    const bare = offload(url, "relay", "--from", missing, "--to", missing, "--lease", "30");
    assert.equal(bare.code, 2, bare.err);
    assert.match(bare.err, /ConfigError: --lease must look like/);
  });

  it("relay and migrate refuse a missing or unknown option as a usage error (exit 2), as every other command does", () => {
    const missing = offload(url, "relay", "--to", "sqlite::memory:");
    assert.equal(missing.code, 2, missing.err);
    assert.match(missing.err, /required option '--from <url>' not specified/);
    // --schema is PostgreSQL's: given with another backend it was ignored without a word.
    const schema = offload(url, "migrate", "--schema", "app");
    assert.equal(schema.code, 2, schema.out + schema.err);
    assert.match(schema.err, /ConfigError: --schema is for a PostgreSQL URL; this one is sqlite:/);
    const unknown = offload(url, "migrate", "--shema", "x");
    assert.equal(unknown.code, 2, unknown.err);
    assert.match(unknown.err, /unknown option '--shema'/);
  });

  it("jobs cancel of a job that already succeeded says it was not cancelled, rather than only its state", () => {
    const r = offload(url, "jobs", "cancel", ids["ok"] ?? "");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), `job ${ids["ok"]}: already succeeded, not cancelled`);
    assert.match(offload(url, "jobs", "show", ids["ok"] ?? "").out, /state:\s+succeeded/);
  });

  it("jobs cancel of an active job says the cancel was requested, not just that it is active", async () => {
    const app = new Offload({ backend: url });
    try {
      const task = app.task({ name: "long.run", queue: "long", run: () => null });
      const job = await task.enqueue(null);
      const backend = await app.backend();
      const [claimed] = await backend.claim({ queues: ["long"], limit: 1, worker: "elsewhere", leaseMs: 60_000, now: Date.now() });
      assert.equal(claimed?.job.id, job.id);
      const r = offload(url, "jobs", "cancel", job.id);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out.trim(), `job ${job.id}: active, cancel requested (its worker aborts it)`);
    } finally {
      await app.close();
    }
  });

  it("migrate on a Redis it cannot reach fails (exit 1), rather than saying it is up to date", async () => {
    // Nothing listens there; a short reply timeout, so the refusal comes in about a second.
    const redis = `redis://:hunter2@127.0.0.1:${await freePort()}/?replyTimeout=1s`;
    const r = offload(url, "migrate", "--url", redis);
    assert.equal(r.code, 1, r.out + r.err);
    assert.doesNotMatch(r.out, /up to date/);
    assert.match(r.err, /^offload: BackendUnavailableError: the redis backend is unavailable: .*ECONNREFUSED/);
    assert.doesNotMatch(r.err, /hunter2/);
  });

  it("jobs list pages with --before: every job once, and the table says how to get the next page", async () => {
    const own = `sqlite://${join(dir, "paging.db")}`;
    const app = new Offload({ backend: own });
    const ping = app.task({ name: "ping", queue: "pings", run: () => null });
    const ids = (await ping.enqueueMany([1, 2, 3, 4, 5].map(() => null))).map((j) => j.id);
    await app.close();
    const seen: string[] = [];
    let before: string[] = [];
    for (let page = 0; page < 5; page++) {
      const r = offload(own, "jobs", "list", "--limit", "2", "--json", ...before);
      assert.equal(r.code, 0, r.err);
      const jobs = JSON.parse(r.out) as Array<{ id: string }>;
      if (jobs.length === 0) break;
      seen.push(...jobs.map((j) => j.id));
      before = ["--before", jobs.at(-1)?.id ?? ""];
    }
    assert.deepEqual(seen, [...ids].reverse(), "newest first, each job once");
    const table = offload(own, "jobs", "list", "--limit", "2", "--queue", "pings");
    assert.equal(table.code, 0, table.err);
    assert.equal(table.err.trim(), `next page: offload jobs list --queue pings --limit 2 --before ${ids[3]}`);
    const huge = offload(own, "jobs", "list", "--limit", "200000");
    assert.equal(huge.code, 2, huge.err);
    assert.match(huge.err, /ConfigError: --limit must be at most 100,000/);
    const bad = offload(own, "jobs", "list", "--before", "yesterday");
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /ConfigError: --before must be a job id/);
  });

  it("jobs retry and jobs cancel take several ids (jobs list --json | jq | xargs), and go on past one they cannot act on", async () => {
    const own = `sqlite://${join(dir, "several.db")}`;
    const app = new Offload({ backend: own });
    const mail = app.task({ name: "mail.send", queue: "mail", retry: { attempts: 1 }, run: (p: { to: string }) => {
      if (p.to === "bounce") throw new Error("mailbox unavailable");
      return { sent: p.to };
    } });
    const failed = (await mail.enqueueMany([{ to: "bounce" }, { to: "bounce" }])).map((j) => j.id);
    assert.equal(await drain(app), 2);
    const waiting = (await mail.enqueueMany([{ to: "x" }, { to: "y" }], { delay: "1h" })).map((j) => j.id);
    await app.close();
    const missing = "01890000-0000-7000-8000-000000000000";
    const retried = offload(own, "jobs", "retry", failed[0] ?? "", missing, failed[1] ?? "");
    assert.equal(retried.code, 1, "one of them could not be retried");
    assert.equal(retried.out, `job ${failed[0]} queued again\njob ${failed[1]} queued again\n`);
    assert.equal(retried.err.trim(), `offload: JobNotFoundError: job ${missing} not found`);
    const cancelled = offload(own, "jobs", "cancel", ...waiting);
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.equal(cancelled.out, waiting.map((id) => `job ${id}: cancelled\n`).join(""));
  });

  it("jobs show --history prints the job's history: its states, progress and log lines, in order", async () => {
    const own = `sqlite://${join(dir, "history.db")}`;
    const app = new Offload({ backend: own });
    const render = app.task({ name: "reports.render", queue: "reports", run: async (_: null, ctx) => {
      await ctx.progress(0.5, "half way");
      ctx.log("page 3 of 10");
      return "done";
    } });
    const { id } = await render.enqueue(null);
    assert.equal(await drain(app), 1);
    await app.close();
    const r = offload(own, "jobs", "show", id, "--history");
    assert.equal(r.code, 0, r.err);
    const history = r.out.slice(r.out.indexOf("history:"));
    assert.match(history, /^history:\n {2}\S+Z {2}state {4}queued\n {2}\S+Z {2}state {4}active \(attempt 1\)\n {2}\S+Z {2}progress 50% half way\n {2}\S+Z {2}log {6}page 3 of 10\n {2}\S+Z {2}state {4}succeeded \(attempt 1\)\n$/);
    const json = JSON.parse(offload(own, "jobs", "show", id, "--history", "--json").out) as { id: string; history: Array<{ type: string }> };
    assert.equal(json.id, id);
    assert.deepEqual(json.history.map((e) => e.type), ["state", "state", "progress", "log", "state"]);
    assert.doesNotMatch(offload(own, "jobs", "show", id).out, /history:/, "only when asked: a job may keep 20,000 events");
  });

  it("--version and -V print the package's version on stdout, exit 0", () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      const r = offload(url, flag);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `${version}\n`);
    }
  });

  it("queues and jobs on a SQLite file that does not exist say so, rather than make an empty one and show no queues", () => {
    // The default is ./offload.db in the folder the command runs in: run from another folder, it
    // made a new database there and answered "no queues yet" while the app's queue backed up.
    const file = join(dir, "not-the-app.db");
    for (const args of [["queues"], ["jobs", "list", "--state", "failed"]]) {
      const r = offload(`sqlite://${file}`, ...args);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, new RegExp(`^offload: BackendOpenError: cannot open backend sqlite://${file.replaceAll(".", "\\.")}: no such file`));
      assert.equal(existsSync(file), false, "nothing made");
    }
  });
});
