// The HTTP suite on SQLite: one database file, shared by this (web) process and a worker process.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { defineHttpSuite } from "./suite.ts";

const dir = mkdtempSync(join(tmpdir(), "offload-http-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
defineHttpSuite("sqlite (file, WAL)", async () => `sqlite://${join(dir, `http-${n++}.db`)}`);
