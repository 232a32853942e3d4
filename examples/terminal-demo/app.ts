// The terminal demo's app: the tasks a small web shop would hand to a queue. The demo process
// enqueues them; `offload worker examples/terminal-demo/app.ts` (started by the demo) runs them.
import { Offload, Permanent } from "../../src/index.ts";
import { z } from "zod";

export const offload = new Offload(); // OFFLOAD_URL, set by the demo

const pause = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

export const welcomeEmail = offload.task({
  name: "email.welcome",
  queue: "emails",
  schema: z.object({ to: z.email() }),
  async run({ to }, ctx) {
    await pause(300, ctx.signal); // the SMTP round trip
    return { sentTo: to };
  },
});

export const renderReport = offload.task({
  name: "reports.render",
  queue: "reports",
  schema: z.object({ reportId: z.string() }),
  async run({ reportId }, ctx) {
    for (let page = 1; page <= 5; page++) {
      await pause(250, ctx.signal);
      await ctx.progress(page / 5, `page ${page} of 5`);
    }
    return { url: `/reports/${reportId}.pdf` };
  },
});

export const deliverWebhook = offload.task({
  name: "webhook.deliver",
  queue: "webhooks",
  retry: { attempts: 4, base: "400ms", max: "5s" },
  schema: z.object({ endpoint: z.string(), failTimes: z.number().int() }),
  async run({ endpoint, failTimes }, ctx) {
    await pause(100, ctx.signal);
    if (endpoint.includes("gone")) throw new Permanent(new Error(`410 Gone from ${endpoint}`));
    if (ctx.attempt <= failTimes) throw new Error(`503 from ${endpoint}`);
    return { delivered: endpoint, attempt: ctx.attempt };
  },
});

export const sendDigest = offload.task({
  name: "digest.send",
  queue: "emails",
  run: (payload: { user: string }) => ({ digestFor: payload.user }),
});
