// Each mounting example (Hono, Express, Fastify, node:http) over real HTTP: the app's route
// answers 202 with Location, the status JSON and SSE routes work through the framework, errors
// stay JSON, and an SSE client that leaves releases its stream in every framework.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { JobsHttp } from "../../src/http/index.ts";
import { openSse, readUntil } from "../http/sse-client.ts";
import { start as startExpress } from "../../examples/http-express/main.ts";
import { start as startFastify } from "../../examples/http-fastify/main.ts";
import { start as startHono } from "../../examples/http-hono/main.ts";
import { start as startNode } from "../../examples/http-node/main.ts";

// The examples store artifacts in the default folder ($OFFLOAD_ARTIFACTS_DIR): a temporary one here.
const artifacts = mkdtempSync(join(tmpdir(), "offload-examples-"));
process.env["OFFLOAD_ARTIFACTS_DIR"] = artifacts;
after(() => rmSync(artifacts, { recursive: true, force: true }));

interface Example {
  readonly url: string;
  readonly http: JobsHttp;
  close(): Promise<void>;
}

const examples: ReadonlyArray<[string, (o: { backend: string; port: number }) => Promise<Example>]> = [
  ["Hono", startHono],
  ["Express", startExpress],
  ["Fastify", startFastify],
  ["node:http", startNode],
];

for (const [name, start] of examples) {
  describe(`examples/http-${name.toLowerCase().replace(":", "")}: offload/http mounted in ${name}`, () => {
    it("POST /reports → 202 + Location; status JSON; SSE to the result; the artifact downloads", async () => {
      const app = await start({ backend: "sqlite::memory:", port: 0 });
      try {
        const accepted = await fetch(`${app.url}/reports`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"steps":3}' });
        assert.equal(accepted.status, 202);
        const body = (await accepted.json()) as { id: string; links: { events: string } };
        assert.equal(accepted.headers.get("location"), `/jobs/${body.id}`);
        const status = await fetch(`${app.url}/jobs/${body.id}`);
        assert.equal(status.status, 200);
        assert.equal(((await status.json()) as { task: string }).task, "example.report");

        const sse = await openSse(`${app.url}${body.links.events}`);
        const messages = await readUntil(sse, (m) => m.event === "result");
        // A run's newest progress event replaces the one before (docs/decisions.md): a stream that
        // opens after a step (a loaded machine) starts from the newest. So: steps of this run, in
        // order, ending at 1.
        const progress = messages.filter((m) => m.event === "progress").map((m) => (JSON.parse(m.data) as { progress: number }).progress);
        assert.equal(progress.at(-1), 1, String(progress));
        assert.ok(progress.every((p, i) => [1 / 3, 2 / 3, 1].includes(p) && (i === 0 || p > (progress[i - 1] ?? 1))), String(progress));
        const result = JSON.parse(messages.at(-1)?.data ?? "{}") as { state: string; result: { url: string } };
        assert.equal(result.state, "succeeded");
        const file = await fetch(`${app.url}${result.result.url}`);
        assert.equal(await file.text(), "a report in 3 steps\n");
        const tampered = await fetch(`${app.url}${result.result.url.replace(/sig=(.)/, (_, c: string) => `sig=${c === "A" ? "B" : "A"}`)}`);
        assert.equal(tampered.status, 403);
      } finally {
        await app.close();
      }
    });

    it("400 / 404 as JSON through the framework, and a client that leaves releases its stream", async () => {
      const app = await start({ backend: "sqlite::memory:", port: 0 });
      try {
        const bad = await fetch(`${app.url}/jobs/nope`);
        assert.equal(bad.status, 400);
        assert.deepEqual(await bad.json(), { error: { code: "BAD_REQUEST", message: "malformed job id" } });
        const missing = await fetch(`${app.url}/jobs/01890000-0000-7000-8000-000000000000/cancel`, { method: "POST" });
        assert.equal(missing.status, 404);

        const accepted = await fetch(`${app.url}/reports`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"steps":50}' });
        const { links } = (await accepted.json()) as { links: { events: string; cancel: string } };
        const sse = await openSse(`${app.url}${links.events}`);
        await readUntil(sse, (m) => m.event === "state");
        assert.equal(app.http.streams.open, 1);
        sse.close();
        await app.http.streams.idle();
        assert.equal(app.http.streams.open, 0);
      } finally {
        await app.close();
      }
    });
  });
}
