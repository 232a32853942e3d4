// The public view of a job: what GET /jobs/:id answers and the SSE `result` event carries.
// It leaves out what only operators should see (payload, worker names, stacks, lease data) and
// turns artifact references in the result into fresh signed download URLs.
import type { ArtifactInfo } from "../artifacts/store.ts";
import { parseArtifactRef } from "../artifacts/store.ts";
import type { JobRecord, JobState } from "../core/job.ts";

/** A public error is one short line: the first line of the message, cut to this length. */
const MAX_ERROR_MESSAGE = 300;
/** Results are walked to rewrite artifact references; deeper values are left as they are. */
const MAX_RESULT_DEPTH = 8;

export interface PublicJob {
  readonly id: string;
  readonly task: string;
  readonly queue: string;
  readonly state: JobState;
  readonly progress: number | null;
  readonly message: string | null;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly createdAt: string;
  readonly runAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** Set when the job is waiting to retry: when it will run again. */
  readonly retryAt: string | null;
  readonly result?: unknown;
  readonly error: { readonly name: string; readonly message: string } | null;
  readonly artifacts: ReadonlyArray<{ readonly name: string; readonly size: number; readonly url: string }>;
  readonly links: { readonly self: string; readonly events: string; readonly cancel: string };
}

export interface ViewDeps {
  readonly basePath: string;
  /** A signed, expiring URL for one artifact of the job. */
  readonly artifactUrl: (jobId: string, name: string) => string;
}

export function publicJob(job: JobRecord, artifacts: readonly ArtifactInfo[], deps: ViewDeps): PublicJob {
  const self = `${deps.basePath}/${job.id}`;
  const last = job.errors.at(-1);
  const showError = last !== undefined && (job.state === "failed" || job.state === "retrying");
  return {
    id: job.id,
    task: job.task,
    queue: job.queue,
    state: job.state,
    progress: job.progress ?? null,
    message: job.progressMessage ?? null,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    createdAt: iso(job.createdAt),
    runAt: iso(job.runAt),
    startedAt: job.startedAt === undefined ? null : iso(job.startedAt),
    finishedAt: job.finishedAt === undefined ? null : iso(job.finishedAt),
    retryAt: job.state === "retrying" ? iso(job.runAt) : null,
    ...(job.state === "succeeded" ? { result: withArtifactUrls(job.result, job.id, deps, 0) } : {}),
    error: showError ? { name: shortLine(last.name, 100), message: shortLine(last.message, MAX_ERROR_MESSAGE) } : null,
    artifacts: artifacts.map((a) => ({ name: a.name, size: a.size, url: deps.artifactUrl(job.id, a.name) })),
    links: { self, events: `${self}/events`, cancel: `${self}/cancel` },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function shortLine(text: string, max: number): string {
  const line = text.split(/\r?\n/, 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Replaces this job's artifact references with signed URLs; references to other jobs stay opaque. */
function withArtifactUrls(value: unknown, jobId: string, deps: ViewDeps, depth: number): unknown {
  if (typeof value === "string") {
    const ref = parseArtifactRef(value);
    return ref && ref.jobId === jobId ? deps.artifactUrl(jobId, ref.name) : value;
  }
  if (depth >= MAX_RESULT_DEPTH || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v: unknown) => withArtifactUrls(v, jobId, deps, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withArtifactUrls(v, jobId, deps, depth + 1)]));
}
