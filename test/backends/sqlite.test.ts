import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { SqliteBackend } from "../../src/backend/sqlite/sqlite-backend.ts";
import { defineBackendSuite } from "../conformance/suite.ts";

defineBackendSuite("sqlite (memory)", async () => new SqliteBackend({ path: ":memory:" }));

const dir = mkdtempSync(join(tmpdir(), "offload-conformance-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
defineBackendSuite("sqlite (file, WAL)", async () => new SqliteBackend({ path: join(dir, `t${n++}.db`) }));
