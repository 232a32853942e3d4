// `offload relay`, run as a real process: what it does when told to relay a store into itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Offload } from "../../src/index.ts";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Runs the CLI in `cwd` to its end; a relay that keeps running instead of refusing is killed after 20 s. */
function offload(cwd: string, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("offload relay into the store it relays from", () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-cli-relay-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses --from and --to naming the same URL, as a usage error, before opening it", () => {
    const url = `sqlite://${join(dir, "no-such-folder", "outbox.db")}`; // opening it would fail first
    const r = offload(dir, "relay", "--from", url, "--to", url);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /ConfigError: --from and --to name the same backend/);
  });

  it("stops, exit 2, when --to is the --from store under another spelling, and leaves its jobs queued, not marked relayed", async () => {
    const file = join(dir, "jobs.db");
    const app = new Offload({ backend: `sqlite://${file}` });
    const mail = app.task({ name: "mail.send", queue: "mail", run: () => "sent" });
    const jobs = await mail.enqueueMany([{}, {}, {}]);
    try {
      // The same file, relative to the relay's working folder: another URL, the same jobs. Relayed
      // into itself, each job is "found at the destination" and was marked succeeded, never run.
      const r = offload(dir, "relay", "--from", `sqlite://${file}`, "--to", "sqlite://./jobs.db");
      assert.equal(r.code, 2, r.out + r.err);
      assert.match(r.err, /SameStoreError: the destination is the outbox itself/);
      for (const { id } of jobs) {
        const job = await app.jobs.get(id);
        assert.equal(job.state, "queued", id);
        assert.equal(job.attempt, 0, "handed back, its attempt not counted");
      }
    } finally {
      await app.close();
    }
  });

  it("refuses --queues that names no queue, instead of relaying every queue (as offload worker does)", () => {
    const url = `sqlite://${join(dir, "no-such-folder", "outbox.db")}`; // opening it would fail first
    const r = offload(dir, "relay", "--from", url, "--to", "sqlite::memory:", "--queues", " , ");
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /ConfigError: --queues names no queue, got " , "/);
  });
});
