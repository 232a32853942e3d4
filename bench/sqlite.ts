// SQLite benchmark: Offload on a WAL file beside a bare node:sqlite loop that does the least a
// queue must (insert rows; claim 50 and mark them done), as the ceiling to compare against.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { measureOffload } from "./offload-suite.ts";
import { type Row, option, perSecond, printTable } from "./measure.ts";

function bareLoop(file: string, n: number): { insert: number; drain50: number } {
  const db = new DatabaseSync(file);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  db.exec("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, payload TEXT NOT NULL)");
  db.exec("CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued'");
  const insert = db.prepare("INSERT INTO jobs (state, payload) VALUES ('queued', ?)");
  let start = performance.now();
  for (let i = 0; i < n; i += 1_000) {
    db.exec("BEGIN");
    for (let k = i; k < Math.min(n, i + 1_000); k++) insert.run(JSON.stringify({ i: k }));
    db.exec("COMMIT");
  }
  const insertRate = perSecond(n, performance.now() - start);
  const claim = db.prepare("UPDATE jobs SET state = 'active' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 50) RETURNING id");
  const done = db.prepare("UPDATE jobs SET state = 'done' WHERE id = ?");
  start = performance.now();
  for (;;) {
    db.exec("BEGIN IMMEDIATE");
    const rows = claim.all() as Array<{ id: number }>;
    db.exec("COMMIT");
    if (rows.length === 0) break;
    db.exec("BEGIN IMMEDIATE");
    for (const r of rows) done.run(r.id);
    db.exec("COMMIT");
  }
  const drainRate = perSecond(n, performance.now() - start);
  db.close();
  return { insert: insertRate, drain50: drainRate };
}

export async function main(args: string[]): Promise<void> {
  const n = Number(option(args, "n", "20000"));
  const dir = mkdtempSync(join(tmpdir(), "offload-bench-"));
  try {
    console.log(`SQLite benchmark: N = ${n}, node ${process.version}, file in ${dir}`);
    const offload = await measureOffload(`sqlite://${join(dir, "offload.db")}`, n);
    const bare = bareLoop(join(dir, "bare.db"), n);
    const systems = ["offload", "bare node:sqlite"];
    const rows: Row[] = [
      { metric: "enqueue, one at a time", unit: "jobs/s", values: { offload: offload.enqueueOne } },
      { metric: "enqueue, batches of 1,000", unit: "jobs/s", values: { offload: offload.enqueueBatch, "bare node:sqlite": bare.insert } },
      { metric: "drain, concurrency 1", unit: "jobs/s", values: { offload: offload.drain1 } },
      { metric: "drain, concurrency 50", unit: "jobs/s", values: { offload: offload.drain50, "bare node:sqlite": bare.drain50 } },
      { metric: "enqueue→start p50 (other process)", unit: "ms", values: { offload: offload.latencyP50 } },
      { metric: "enqueue→start p99 (other process)", unit: "ms", values: { offload: offload.latencyP99 } },
      { metric: "worker peak RSS (drain c=50)", unit: "MiB", values: { offload: offload.workerRssMiB } },
    ];
    printTable("Offload on SQLite (the bare loop keeps no results, leases, attempts or events: it is the ceiling)", systems, rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
