// offload/http: the 202 pattern as Web-standard handlers (Request → Response, Hono inside).
//
//   GET  {base}/:id                       the job's public JSON view
//   GET  {base}/:id/events                its events as SSE (resumes with Last-Event-ID)
//   POST {base}/:id/cancel                cancel it
//   GET  {base}/:id/artifacts/:name?...   a file it stored, by signed URL
//
// Every read and action goes through the JobService, the change signal that wakes SSE streams
// included (offload.jobs.watch). Malformed id → 400, unknown → 404, not allowed → 403,
// always as JSON, never with a stack.
import { Signer } from "../artifacts/signer.ts";
import type { Offload } from "../client/offload.ts";
import type { Clock } from "../core/clock.ts";
import { type Duration, positiveMs } from "../core/duration.ts";
import type { JobRecord } from "../core/job.ts";
import { type Authorize, createJobToken } from "./access.ts";
import { signedArtifactPath } from "./artifact-route.ts";
import { StreamTracker } from "./event-stream.ts";
import { type PublicJob, publicJob } from "./job-view.ts";
import { json } from "./responses.ts";
import { jobRoutes } from "./routes.ts";

export interface JobsHttpOptions {
  readonly offload: Offload;
  /** Key for signed URLs and job tokens (≥ 16 bytes). Every web process must share it. */
  readonly secret: string | Uint8Array;
  /** Where the routes live. Default "/jobs". */
  readonly basePath?: string;
  /** Who may read or cancel a job, besides token holders. Default: jobs without an owner only. */
  readonly authorize?: Authorize;
  /** Lifetime of tokens from tokenFor()/accepted(). Default "1h". */
  readonly tokenTtl?: Duration;
  /** Lifetime of artifact download URLs. Default "15m". */
  readonly urlTtl?: Duration;
  /**
   * How often an SSE stream looks at its job itself, as a last resort. Missed change signals are
   * covered twice a second by the look that all streams and waits of the Offload share. Default "30s".
   */
  readonly pollInterval?: Duration;
  /** SSE comment sent on a quiet stream so proxies keep it open. Default "15s". */
  readonly keepAlive?: Duration;
  /** Time for token and URL expiry. Default: the Offload instance's clock. */
  readonly clock?: Clock;
  /** Called with unexpected errors (the client only gets a 500 without detail). */
  readonly onError?: (error: unknown) => void;
}

export interface AcceptedOptions {
  /** Put a read token for this job in the body (for a browser without the app's session). Default true. */
  readonly token?: boolean;
  /** Let the token also cancel the job. Default false. */
  readonly cancel?: boolean;
  /** Extra fields for the body. */
  readonly body?: Readonly<Record<string, unknown>>;
}

export interface JobsHttp {
  /** The Web-standard handler: mount it under `basePath`. Paths outside it get a JSON 404. */
  readonly fetch: (request: Request) => Promise<Response>;
  readonly basePath: string;
  /** `202 Accepted`, `Location: {base}/:id`, and a JSON body with links (and a token) to follow the job. */
  accepted(job: { readonly id: string }, options?: AcceptedOptions): Response;
  /** A signed token that lets its holder read (and optionally cancel) one job until it expires. */
  tokenFor(jobId: string, options?: { readonly ttl?: Duration; readonly cancel?: boolean }): string;
  /** A signed, expiring download path for one artifact. */
  artifactUrl(jobId: string, name: string): string;
  /** The public JSON view of a job, as GET {base}/:id answers it. */
  view(job: JobRecord): Promise<PublicJob>;
  /** Open SSE streams; each holds one change subscription. */
  readonly streams: { readonly open: number; idle(): Promise<void> };
}

export function createJobsHttp(options: JobsHttpOptions): JobsHttp {
  const { offload } = options;
  const basePath = normalizeBase(options.basePath ?? "/jobs");
  const signer = new Signer(options.secret, options.clock ?? offload.clock);
  const tokenTtlMs = positiveMs(options.tokenTtl ?? "1h", "tokenTtl");
  const urlTtlMs = positiveMs(options.urlTtl ?? "15m", "urlTtl");
  const tracker = new StreamTracker();
  const report = options.onError ?? ((error: unknown) => console.error("offload/http:", error));

  const artifactUrl = (jobId: string, name: string): string => signedArtifactPath(signer, basePath, jobId, name, urlTtlMs);
  const view = async (job: JobRecord): Promise<PublicJob> => publicJob(job, await offload.artifacts.list(job.id), { basePath, artifactUrl });
  const tokenFor = (jobId: string, o: { ttl?: Duration; cancel?: boolean } = {}): string =>
    createJobToken(signer, jobId, { ttlMs: o.ttl === undefined ? tokenTtlMs : positiveMs(o.ttl, "ttl"), cancel: o.cancel ?? false });

  const app = jobRoutes(basePath, {
    offload, signer, authorize: options.authorize, view, report,
    stream: {
      jobs: offload.jobs, view, tracker, report,
      follow: (jobId, hear) => offload.jobs.follow(jobId, hear),
      pollMs: positiveMs(options.pollInterval ?? "30s", "pollInterval"),
      keepAliveMs: positiveMs(options.keepAlive ?? "15s", "keepAlive"),
    },
  });

  return {
    fetch: async (request) => app.fetch(request),
    basePath,
    accepted(job, o = {}) {
      const self = `${basePath}/${job.id}`;
      const token = o.token === false ? undefined : tokenFor(job.id, { cancel: o.cancel ?? false });
      const query = token === undefined ? "" : `?token=${token}`;
      const body = {
        ...o.body,
        id: job.id,
        links: { self: `${self}${query}`, events: `${self}/events${query}`, cancel: `${self}/cancel${query}` },
        ...(token === undefined ? {} : { token }),
      };
      return json(body, 202, { location: self });
    },
    tokenFor,
    artifactUrl,
    view,
    streams: { get open() { return tracker.open; }, idle: () => tracker.idle() },
  };
}

function normalizeBase(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "" : trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
}
