// The demo's home page says where its web and worker processes share their jobs: the SQLite file
// by default, or the server OFFLOAD_BACKEND names (the same app runs on Redis and PostgreSQL).
import assert from "node:assert/strict";
import { it } from "node:test";
import { homePage } from "../../examples/reports-app/pages.ts";

const banner = (page: string): string => /<header>[\s\S]*?<\/header>/.exec(page)?.[0] ?? "";

it("the home page names the backend the demo runs on, not always a SQLite file", () => {
  assert.match(banner(homePage("sqlite:///tmp/reports/offload.db")), /separate processes on one SQLite file/);
  const onRedis = banner(homePage("redis://127.0.0.1:6379?prefix=demo"));
  assert.doesNotMatch(onRedis, /SQLite/);
  assert.match(onRedis, /separate processes on one Redis server/);
  const onPostgres = banner(homePage("postgres://postgres@127.0.0.1/test"));
  assert.doesNotMatch(onPostgres, /SQLite/);
  assert.match(onPostgres, /separate processes on one PostgreSQL database/);
});
