// The demo on PostgreSQL (`OFFLOAD_BACKEND=postgres://… npm start`): the same app, the same HTTP
// and SSE; its web and worker processes each migrate the schema at start.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { POSTGRES_URL, dropSchema, uniqueSchema, withClient } from "../backends/postgres-helpers.ts";
import { runReportsAppScenario } from "./reports-app-scenario.ts";

const schema = uniqueSchema("demo");
after(() => dropSchema(schema));

describe("examples/reports-app on PostgreSQL", () => {
  it("a report is answered 202, followed live to its PDF; a sign-up's email lands; SIGTERM stops every process", async () => {
    const ids = await runReportsAppScenario(`${POSTGRES_URL}?schema=${schema}`);
    const stored = await withClient((c) => c.query(`SELECT state FROM ${schema}.jobs WHERE id IN (SELECT unnest($1::text[]))`, [ids]));
    assert.deepEqual(stored.rows.map((r: { state: string }) => r.state), ["succeeded", "succeeded"], "the jobs are in the PostgreSQL schema");
  });
});
