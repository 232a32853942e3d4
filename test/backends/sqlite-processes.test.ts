// One SQLite file shared with other processes: opening it while another process holds its lock
// waits for the lock (busy timeout), as writes do, instead of failing with "database is locked".
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";

/**
 * A process that takes the file's exclusive lock (a rollback-journal file, as a fresh one is
 * before the first open turns on WAL), says "locked", and keeps it until the file `release`
 * exists, then `holdMs` longer: so the test's open surely starts while the lock is held.
 */
function holdLock(file: string, release: string, holdMs: number): { child: ChildProcess; locked: Promise<void>; exited: Promise<number | null> } {
  const script = `
    const { DatabaseSync } = require("node:sqlite");
    const { existsSync } = require("node:fs");
    const db = new DatabaseSync(process.argv[1]);
    db.exec("BEGIN EXCLUSIVE");
    db.exec("CREATE TABLE IF NOT EXISTS lock_holder (x)");
    process.stdout.write("locked\\n");
    const look = setInterval(() => {
      if (!existsSync(process.argv[2])) return;
      clearInterval(look);
      setTimeout(() => { db.exec("COMMIT"); db.close(); }, Number(process.argv[3]));
    }, 5);
  `;
  const child = spawn(process.execPath, ["-e", script, file, release, String(holdMs)], { stdio: ["ignore", "pipe", "inherit"] });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("locked")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`lock holder exited (${code}) before locking`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, locked, exited };
}

describe("sqlite: several processes on one file", () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-sqlite-processes-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("opening a file another process holds locked waits for the lock instead of failing", async () => {
    const file = join(dir, "locked-at-open.db");
    const release = join(dir, "release");
    const holder = holdLock(file, release, 100);
    try {
      await holder.locked;
      // The holder lets go only after this file appears: the open below (synchronous, as
      // node:sqlite is) begins while the lock is still held, however slow this process is.
      writeFileSync(release, "");
      const backend = new SqliteBackend({ path: file, busyTimeoutMs: 10_000 });
      try {
        assert.deepEqual(await backend.counts(), []);
      } finally {
        await backend.close();
      }
    } finally {
      writeFileSync(release, ""); // lets the holder go, also after a failure above
      assert.equal(await holder.exited, 0, "the lock holder committed and closed cleanly");
    }
  });
});
