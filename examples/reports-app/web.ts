// The reports app's web process: a Hono app that hands slow work to Offload and answers
// `202 Accepted` at once, with offload/http mounted at /jobs for status, live events, cancel
// and downloads. Prints "listening <url>" when ready (main.ts waits for that line).
import { randomUUID } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Hono } from "hono";
import { createJobsHttp, toNodeListener } from "../../src/http/index.ts";
import { BackendOpenError, BackendUnavailableError } from "../../src/index.ts";
import { backendUrl, ensureDataDirs, mailboxDir, signingSecret } from "./config.ts";
import { homePage, recentJobsPage } from "./pages.ts";
import { deliverWebhook, offload, renderReport, sendWelcomeEmail } from "./tasks.ts";

ensureDataDirs();
const SESSION_COOKIE = "reports_sid";

function sessionOf(request: Request): string | undefined {
  const cookies = request.headers.get("cookie") ?? "";
  return /(?:^|;\s*)reports_sid=([0-9a-f-]{36})/.exec(cookies)?.[1];
}

const http = createJobsHttp({
  offload,
  secret: signingSecret(),
  // A job belongs to the browser session that asked for it.
  authorize: (request, job) => job.owner === undefined || job.owner === sessionOf(request),
});

// The local webhook endpoints the demo delivers to: two healthy, one that fails its first two
// calls per delivery, one that is down for good.
const calls = new Map<string, number>();
const ENDPOINTS = ["crm", "analytics", "billing", "legacy"] as const;

const app = new Hono();
app.get("/", (c) => {
  if (!sessionOf(c.req.raw)) c.header("set-cookie", `${SESSION_COOKIE}=${randomUUID()}; Path=/; HttpOnly; SameSite=Lax`);
  return c.html(homePage(backendUrl));
});
app.get("/recent", async (c) => c.html(recentJobsPage(await offload.jobs.list({ limit: 40 }))));

app.post("/reports", async (c) => {
  const body = await c.req.json<unknown>().catch(() => ({}));
  const title = isRecord(body) && typeof body["title"] === "string" && body["title"].trim() ? body["title"].trim().slice(0, 100) : "Quarterly report";
  const job = await renderReport.enqueue({ title }, { owner: sessionOf(c.req.raw) });
  return http.accepted(job, { cancel: true });
});

app.post("/signup", async (c) => {
  const body = await c.req.json<unknown>().catch(() => ({}));
  const email = isRecord(body) ? body["email"] : undefined;
  const name = isRecord(body) ? body["name"] : undefined;
  if (typeof email !== "string" || !/^[^@\s]{1,64}@[^@\s]{1,190}$/.test(email) || typeof name !== "string" || !name.trim()) {
    return c.json({ error: { code: "BAD_REQUEST", message: "a name and an email address, please" } }, 400);
  }
  const job = await sendWelcomeEmail.enqueue({ email, name: name.trim().slice(0, 80) }, { owner: sessionOf(c.req.raw) });
  return http.accepted(job, { body: { message: `Welcome, ${name.trim()}! Your account is ready; the email is on its way.` } });
});

app.post("/webhooks", async (c) => {
  // The worker calls this process's own endpoints at the address it listens on. Not the request's
  // Host header: a client could point the deliveries at another server, and behind a forwarded
  // port the browser's host is not one the worker can reach.
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const owner = sessionOf(c.req.raw);
  const event = `order.created:${randomUUID().slice(0, 8)}`;
  const jobs = await deliverWebhook.enqueueMany(
    ENDPOINTS.map((endpoint) => ({ endpoint, url: `${origin}/hooks/${endpoint}`, event })),
    { owner },
  );
  const deliveries = await Promise.all(jobs.map(async (job, i) => ({ endpoint: ENDPOINTS[i], ...(await http.accepted(job).json() as object) })));
  return c.json({ event, deliveries }, 202);
});

app.post("/hooks/:name", (c) => {
  const name = c.req.param("name");
  const delivery = c.req.header("x-delivery") ?? "";
  const n = (calls.get(delivery) ?? 0) + 1;
  calls.set(delivery, n);
  if (name === "legacy") return c.json({ error: "service unavailable" }, 503);
  if (name === "billing" && n <= 2) return c.json({ error: "busy, try later" }, 500);
  return c.json({ ok: true, call: n });
});

app.get("/api/mailbox", async (c) => {
  const files = (await readdir(mailboxDir).catch(() => [] as string[])).filter((f) => f.endsWith(".eml")).sort().reverse().slice(0, 10);
  const mails = await Promise.all(files.map(async (file) => ({ file, text: await readFile(join(mailboxDir, file), "utf8") })));
  return c.json({ mails });
});

app.all("/jobs/*", (c) => http.fetch(c.req.raw));

// The queue's server cannot take work now (down, full, failing over): nothing is wrong with the
// request, so say "try again shortly" rather than 500. Enqueues with a key are safe to repeat.
app.onError((error, c) => {
  if (error instanceof BackendUnavailableError || error instanceof BackendOpenError) return c.json({ error: { code: error.code, message: "the job queue is unavailable; try again shortly" } }, 503, { "retry-after": "5" });
  console.error(error);
  return c.json({ error: { code: "INTERNAL", message: "internal error" } }, 500);
});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

const server = createServer(toNodeListener(app.fetch));
const port = Number(process.env["PORT"] ?? 3000);
server.on("error", (error: NodeJS.ErrnoException) => {
  const hint = error.code === "EADDRINUSE" ? ` (port ${port} is taken: set PORT, e.g. PORT=${port + 1} npm start)` : "";
  console.error(`web: ${error.message}${hint}`);
  process.exit(1);
});
server.listen(port, () => {
  console.log(`listening http://localhost:${(server.address() as AddressInfo).port}`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections(); // open SSE streams would keep close() waiting
  server.close(() => void offload.close().then(() => process.exit(0)));
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
