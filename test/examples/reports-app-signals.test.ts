// `npm start` must leave nothing behind: SIGINT (Ctrl-C) and SIGTERM to main.ts stop the web
// and worker processes, even with a browser's SSE stream open, and main exits 0 after them.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openSse, readUntil } from "../http/sse-client.ts";
import { isRunning, startReportsApp } from "./reports-app-process.ts";

describe("examples/reports-app: one command, every process stopped", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} stops main.ts, the web process and the worker process`, async () => {
      const app = await startReportsApp();
      try {
        const home = await fetch(app.url);
        assert.equal(home.status, 200);
        const cookie = home.headers.getSetCookie()[0]?.split(";")[0] ?? "";
        const accepted = await fetch(`${app.url}/reports`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body: "{}" });
        assert.equal(accepted.status, 202);
        const { links } = (await accepted.json()) as { links: { events: string } };
        const sse = await openSse(`${app.url}${links.events}`);
        await readUntil(sse, (m) => m.event === "state");
        for (const pid of app.pids) assert.ok(isRunning(pid), `pid ${pid} runs`);
        const code = await app.stop(signal);
        assert.equal(code, 0);
        for (const pid of app.pids) assert.equal(isRunning(pid), false, `pid ${pid} is gone`);
        sse.close();
      } finally {
        app.cleanup();
      }
    });
  }

  it("a backend that cannot be opened stops the app with one line that says why, its password hidden", async () => {
    const data = mkdtempSync(join(tmpdir(), "reports-app-"));
    try {
      const main = spawn(process.execPath, [join(import.meta.dirname, "../../examples/reports-app/main.ts")], {
        env: { ...process.env, PORT: "0", REPORTS_APP_DATA: data, OFFLOAD_BACKEND: "postgres://nobody:secret@127.0.0.1:1/test" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      main.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => main.once("exit", (c) => resolve(c)));
      assert.equal(code, 1, err);
      assert.match(err, /^worker: cannot start: cannot open backend postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/test: connect ECONNREFUSED/m);
      assert.doesNotMatch(err, /secret|^\s+at /m);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
