// The Hono router behind offload/http: one small handler per route. Each handler checks the id,
// loads the job through the JobService, asks access.ts, then answers; errors become JSON.
import { Hono } from "hono";
import type { Signer } from "../artifacts/signer.ts";
import { isArtifactName } from "../artifacts/store.ts";
import type { Offload } from "../client/offload.ts";
import { BackendOpenError, BackendUnavailableError, ClosedError, JobNotFoundError } from "../core/errors.ts";
import { isJobId } from "../core/ids.ts";
import type { JobRecord } from "../core/job.ts";
import { type Authorize, type JobAction, isAllowed } from "./access.ts";
import { serveArtifact } from "./artifact-route.ts";
import { type EventStreamDeps, jobEventStream, resumeAfter } from "./event-stream.ts";
import type { PublicJob } from "./job-view.ts";
import { badRequest, forbidden, internalError, json, jsonError, methodNotAllowed, notFound, unavailable } from "./responses.ts";

const SSE_HEADERS: Readonly<Record<string, string>> = { "content-type": "text/event-stream", "cache-control": "no-cache" };

export interface RouteDeps {
  readonly offload: Offload;
  readonly signer: Signer;
  readonly authorize: Authorize | undefined;
  readonly view: (job: JobRecord) => Promise<PublicJob>;
  readonly stream: EventStreamDeps;
  readonly report: (error: unknown) => void;
}

export function jobRoutes(basePath: string, deps: RouteDeps): Hono {
  const app = new Hono().basePath(basePath);
  app.get("/:id", async (c) => {
    const job = await load(c.req.raw, c.req.param("id"), "read", deps);
    return job instanceof Response ? job : json(await deps.view(job));
  });
  app.get("/:id/events", async (c) => {
    const afterId = resumeAfter(c.req.raw);
    if (afterId === undefined) return badRequest("malformed Last-Event-ID");
    const job = await load(c.req.raw, c.req.param("id"), "read", deps);
    if (job instanceof Response) return job;
    // Hono answers HEAD with a GET handler and drops its body uncancelled: a stream would never end.
    if (c.req.method === "HEAD") return new Response(null, { status: 200, headers: SSE_HEADERS });
    return jobEventStream(c, job, afterId, deps.stream);
  });
  app.post("/:id/cancel", async (c) => {
    const job = await load(c.req.raw, c.req.param("id"), "cancel", deps);
    return job instanceof Response ? job : cancel(job, deps);
  });
  app.get("/:id/artifacts/:name", async (c) => {
    const id = c.req.param("id");
    const name = c.req.param("name");
    if (!isJobId(id) || !isArtifactName(name)) return badRequest("malformed artifact path");
    return serveArtifact(c.req.raw, { jobId: id, name }, { signer: deps.signer, store: deps.offload.artifacts });
  });
  // Registered after the real handlers, so only a method none of them takes gets here.
  for (const [path, allow] of [["/:id", "GET, HEAD"], ["/:id/events", "GET, HEAD"], ["/:id/cancel", "POST"], ["/:id/artifacts/:name", "GET, HEAD"]] as const) {
    app.all(path, () => methodNotAllowed(allow));
  }
  app.notFound(() => notFound());
  app.onError(async (error) => {
    deps.report(error);
    return (await storeUnavailable(error, deps.offload)) ? unavailable() : internalError();
  });
  return app;
}

/** 400 / 404 / 403, or the job when the request may do `action` on it. */
async function load(request: Request, id: string, action: JobAction, deps: RouteDeps): Promise<JobRecord | Response> {
  if (!isJobId(id)) return badRequest("malformed job id");
  const job = await deps.offload.jobs.find(id);
  if (!job) return notFound("job not found");
  const allowed = await isAllowed(request, job, action, { signer: deps.signer, authorize: deps.authorize });
  return allowed ? job : forbidden();
}

async function cancel(job: JobRecord, deps: RouteDeps): Promise<Response> {
  // Cancelling twice is fine (cancel is idempotent); cancelling what ended another way is a conflict.
  if (job.state === "succeeded" || job.state === "failed") return jsonError(409, "CONFLICT", `job is already ${job.state}`);
  try {
    await deps.offload.jobs.cancel(job.id);
  } catch (error) {
    if (error instanceof JobNotFoundError) return notFound("job not found");
    throw error;
  }
  const after = await deps.offload.jobs.find(job.id);
  if (!after) return notFound("job not found");
  // It may have finished between the first read and the cancel, which then changed nothing.
  if (after.state === "succeeded" || after.state === "failed") return jsonError(409, "CONFLICT", `job is already ${after.state}`);
  // An active job stops at its worker's next heartbeat: accepted, not done yet.
  return json(await deps.view(after), after.state === "cancelled" ? 200 : 202);
}

/**
 * A backend that could not be opened, a call its server did not answer, or an Offload already
 * closed (a request that arrives during a graceful shutdown): 503, not 500.
 */
async function storeUnavailable(error: unknown, offload: Offload): Promise<boolean> {
  if (error instanceof BackendOpenError || error instanceof ClosedError || error instanceof BackendUnavailableError) return true;
  const backend = await offload.backend().catch(() => undefined);
  return backend?.unavailable?.(error) === true;
}
