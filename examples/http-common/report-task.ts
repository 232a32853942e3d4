// Shared by the four mounting examples (Hono, Express, Fastify, node:http): one Offload and one
// slow task that reports progress, so each example is only about mounting offload/http.
import { mkdirSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { Offload } from "../../src/index.ts";

export function makeExampleOffload(backend = process.env["OFFLOAD_URL"] ?? "sqlite://./.offload/http-example.db") {
  if (backend.startsWith("sqlite://./.offload/")) mkdirSync(".offload", { recursive: true }); // gitignored
  const offload = new Offload({ backend });
  const report = offload.task({
    name: "example.report",
    async run(payload: { steps: number }, ctx) {
      for (let i = 1; i <= payload.steps; i++) {
        await delay(20, undefined, { signal: ctx.signal }); // the slow part
        await ctx.progress(i / payload.steps, `step ${i} of ${payload.steps}`);
      }
      return { url: await ctx.artifacts.put("report.txt", `a report in ${payload.steps} steps\n`) };
    },
  });
  return { offload, report };
}

/** For examples run by hand: a secret of 16 bytes or more, shared by every web process. */
export const EXAMPLE_SECRET = process.env["OFFLOAD_HTTP_SECRET"] ?? "change-me-to-a-long-random-secret";

/** Parses { "steps": n } leniently; the examples are about mounting, not validation. */
export function stepsFrom(body: unknown): number {
  const steps = typeof body === "object" && body !== null ? (body as Record<string, unknown>)["steps"] : undefined;
  return typeof steps === "number" && Number.isInteger(steps) && steps > 0 && steps <= 100 ? steps : 5;
}
