import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineProcessSuite } from "./suite.ts";

defineProcessSuite("sqlite (one WAL file)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "offload-sqlite-proc-"));
  return { url: `sqlite://${join(dir, "jobs.db")}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
