// The reports app's tasks, imported by the web process (to enqueue) and the worker process (to
// run). Each shows one reason to hand work to a queue: slow work with progress and a file at the
// end, a side effect the request must not wait for, and deliveries that fail and retry.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import PDFDocument from "pdfkit";
import { LocalFolderStore } from "../../src/artifacts/index.ts";
import { Offload } from "../../src/index.ts";
import { artifactsDir, backendUrl, mailboxDir } from "./config.ts";

export const offload = new Offload({ backend: backendUrl, artifacts: new LocalFolderStore(artifactsDir) });

const SECTIONS = ["Summary", "Revenue", "Costs", "Customers", "Regions", "Forecast", "Risks", "Appendix"];

export const renderReport = offload.task({
  name: "reports.render",
  queue: "reports",
  timeout: "2m",
  async run(payload: { title: string }, ctx) {
    const doc = new PDFDocument({ size: "A4", margin: 56, info: { Title: payload.title } });
    // Stream the PDF into the store while it is being written.
    const stored = ctx.artifacts.put("report.pdf", doc);
    try {
      doc.fontSize(24).text(payload.title).moveDown().fontSize(11).text(`Generated ${new Date().toISOString()} by job ${ctx.job.id}`);
      for (const [i, name] of SECTIONS.entries()) {
        await delay(350, undefined, { signal: ctx.signal }); // stands in for a slow query
        doc.moveDown().fontSize(16).text(`${i + 1}. ${name}`).fontSize(11).text(`Figures for ${name.toLowerCase()}: ${Math.round(1000 + Math.random() * 9000)}.`);
        ctx.log(`rendered section ${i + 1}: ${name}`);
        await ctx.progress((i + 1) / SECTIONS.length, `section ${i + 1} of ${SECTIONS.length}: ${name}`);
      }
    } catch (error) {
      // Cancelled, timed out or failed: end the half-written PDF, so the store drops its temporary
      // file instead of waiting on a stream that never ends.
      doc.destroy(error instanceof Error ? error : new Error(String(error)));
      await stored.catch(() => {});
      throw error;
    }
    doc.end();
    return { title: payload.title, url: await stored };
  },
});

export const sendWelcomeEmail = offload.task({
  name: "emails.welcome",
  queue: "emails",
  async run(payload: { email: string; name: string }, ctx) {
    await delay(300, undefined, { signal: ctx.signal }); // an SMTP round trip, say
    const file = `${Date.now()}-${payload.email.replace(/[^A-Za-z0-9.@_-]/g, "_")}.eml`;
    const mail = [
      `To: ${payload.name} <${payload.email}>`, "From: Reports <hello@reports.example>", `Subject: Welcome, ${payload.name}!`, "",
      `Hi ${payload.name},`, "", "Your account is ready. Generate your first report any time.", "", "-- The Reports team", "",
    ].join("\r\n");
    await writeFile(join(mailboxDir, file), mail);
    return { mailbox: file };
  },
});

export const deliverWebhook = offload.task({
  name: "webhooks.deliver",
  queue: "webhooks",
  retry: { attempts: 4, backoff: "exponential", base: "1s", max: "10s", jitter: false },
  retryIf: (error) => !/^HTTP 4\d\d/.test(error.message), // a 4xx will not get better by retrying
  async run(payload: { endpoint: string; url: string; event: string }, ctx) {
    const response = await fetch(payload.url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-delivery": ctx.job.id },
      body: JSON.stringify({ event: payload.event, attempt: ctx.attempt }),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(5_000)]),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status} from ${payload.endpoint}`);
    return { endpoint: payload.endpoint, status: response.status };
  },
});
