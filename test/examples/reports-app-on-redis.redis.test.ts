// The demo on Redis (`OFFLOAD_BACKEND=redis://… npm start`): the same app, the same HTTP and SSE.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { randomToken } from "../../src/core/ids.ts";
import { unlinkAndQuit } from "../backends/redis-helpers.ts";
import { runReportsAppScenario } from "./reports-app-scenario.ts";

const server = process.env["OFFLOAD_TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const prefix = `demo-${randomToken().slice(0, 8)}`;
const admin = new Redis(server);
after(() => unlinkAndQuit(admin, `{${prefix}}:*`));

describe("examples/reports-app on Redis", () => {
  it("a report is answered 202, followed live to its PDF; a sign-up's email lands; SIGTERM stops every process", async () => {
    const ids = await runReportsAppScenario(`${server}?prefix=${prefix}`);
    assert.equal(await admin.exists(...ids.map((id) => `{${prefix}}:job:${id}`)), ids.length, "the jobs are on the Redis server");
  });
});
