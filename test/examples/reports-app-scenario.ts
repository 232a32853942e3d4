// What the demo must do on every backend, over real HTTP: a report answered 202, followed live
// over SSE (progress, then its result) to a PDF download; a sign-up whose welcome email lands in
// the mailbox; and SIGTERM stops the app's processes. The browser test runs the page itself on the
// SQLite default; the server backends run this through the same web and worker processes.
import assert from "node:assert/strict";
import { openSse, readUntil } from "../http/sse-client.ts";
import { isRunning, startReportsApp } from "./reports-app-process.ts";

interface Accepted {
  readonly id: string;
  readonly links: { readonly self: string; readonly events: string };
}

/** Runs the scenario on `backend`; returns the ids of the report's and the sign-up's jobs. */
export async function runReportsAppScenario(backend: string): Promise<string[]> {
  const app = await startReportsApp(backend);
  try {
    const home = await fetch(app.url);
    assert.equal(home.status, 200);
    const cookie = home.headers.getSetCookie()[0]?.split(";")[0] ?? "";
    const json = { cookie, "content-type": "application/json" };

    const accepted = await fetch(`${app.url}/reports`, { method: "POST", headers: json, body: JSON.stringify({ title: "Q4" }) });
    assert.equal(accepted.status, 202);
    const report = (await accepted.json()) as Accepted;
    const { links } = report;
    assert.equal(accepted.headers.get("location"), links.self.split("?")[0], "Location is the tracking URL");
    const sse = await openSse(`${app.url}${links.events}`, { cookie });
    const seen = await readUntil(sse, (m) => m.event === "result");
    sse.close();
    const progress = seen.filter((m) => m.event === "progress").map((m) => (JSON.parse(m.data) as { progress: number }).progress);
    assert.ok(progress.length >= 2 && progress.at(-1) === 1, `progress went live to 100 %: ${progress.join(", ")}`);
    const final = JSON.parse(seen.at(-1)?.data ?? "{}") as { state: string; result: { title: string; url: string } };
    assert.equal(final.state, "succeeded");
    assert.equal(final.result.title, "Q4");
    const pdf = await fetch(new URL(final.result.url, app.url), { headers: { cookie } });
    assert.equal(pdf.status, 200);
    assert.equal(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString("latin1"), "%PDF-");

    const signup = await fetch(`${app.url}/signup`, { method: "POST", headers: json, body: JSON.stringify({ name: "Ada", email: "ada@example.com" }) });
    assert.equal(signup.status, 202);
    const mail = (await signup.json()) as Accepted;
    const mailEvents = await openSse(`${app.url}${mail.links.events}`, { cookie });
    const mailFinal = (await readUntil(mailEvents, (m) => m.event === "result")).at(-1);
    mailEvents.close();
    assert.equal((JSON.parse(mailFinal?.data ?? "{}") as { state: string }).state, "succeeded");
    const { mails } = (await (await fetch(`${app.url}/api/mailbox`)).json()) as { mails: { text: string }[] };
    assert.ok(mails.some((m) => m.text.includes("Subject: Welcome, Ada!")), "the welcome email is in the mailbox");

    assert.equal(await app.stop("SIGTERM"), 0);
    for (const pid of app.pids) assert.equal(isRunning(pid), false, `pid ${pid} is gone`);
    return [report.id, mail.id];
  } finally {
    app.cleanup();
  }
}
