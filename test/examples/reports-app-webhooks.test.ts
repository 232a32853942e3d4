// The demo's webhook fan-out delivers to the web process's own endpoints, whatever Host header the
// request that sent the event carried: behind a forwarded port (or a client that sets the header
// on purpose) the deliveries must not go to another server.
import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { openSse, readUntil } from "../http/sse-client.ts";
import { startReportsApp } from "./reports-app-process.ts";

interface Delivery {
  readonly endpoint: string;
  readonly links: { readonly events: string };
}

/** POST with a Host header of our choosing (fetch does not let a caller set it). */
function postWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { host, "content-type": "application/json" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end("{}");
  });
}

describe("examples/reports-app: webhook deliveries", () => {
  it("go to the app's own endpoints, not to the host named by the request", async () => {
    const app = await startReportsApp();
    try {
      // Port 9 (discard) on the loopback: nothing listens there, so a delivery sent to it fails.
      const sent = await postWithHost(`${app.url}/webhooks`, "127.0.0.1:9");
      assert.equal(sent.status, 202);
      const { deliveries } = JSON.parse(sent.body) as { deliveries: Delivery[] };
      const crm = deliveries.find((d) => d.endpoint === "crm");
      assert.ok(crm, "a delivery to crm");
      const sse = await openSse(`${app.url}${crm.links.events}`);
      const messages = await readUntil(sse, (m) => m.event === "result");
      const states = messages.filter((m) => m.event === "state").map((m) => (JSON.parse(m.data) as { state: string }).state);
      assert.deepEqual(states, ["queued", "active", "succeeded"]);
      const result = JSON.parse(messages.at(-1)?.data ?? "{}") as { state: string; attempt: number };
      assert.equal(result.state, "succeeded");
      assert.equal(result.attempt, 1);
      sse.close();
      assert.equal(await app.stop("SIGTERM"), 0);
    } finally {
      app.cleanup();
    }
  });
});
