// The artifact store port: where files made by jobs (reports, exports) are kept, keyed by job id
// and a plain file name. The HTTP layer serves them through signed URLs; handlers write them
// through `ctx.artifacts`. A store never decides who may read: signatures do that.
import { ConfigError } from "../core/errors.ts";
import { isJobId } from "../core/ids.ts";

/** Bytes a handler can store: a buffer, text, a Web stream, or any async iterable (Node streams). */
export type ArtifactBody = Uint8Array | string | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

export interface ArtifactInfo {
  readonly jobId: string;
  readonly name: string;
  readonly size: number;
}

export interface StoredArtifact extends ArtifactInfo {
  readonly body: ReadableStream<Uint8Array>;
}

export interface ArtifactStore {
  /** Stores (or replaces) one artifact. A reader never sees a half-written file. */
  put(jobId: string, name: string, body: ArtifactBody): Promise<ArtifactInfo>;
  /** The artifact's bytes, or undefined when there is none. */
  get(jobId: string, name: string): Promise<StoredArtifact | undefined>;
  /** Every artifact of one job, by name. */
  list(jobId: string): Promise<ArtifactInfo[]>;
  /** Deletes every artifact of one job (for pruning). */
  remove(jobId: string): Promise<void>;
}

/** File names become path segments and URL segments: keep them plain, never hidden, never a path. */
const ARTIFACT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

export function isArtifactName(name: string): boolean {
  return ARTIFACT_NAME.test(name) && !name.includes("..");
}

export function checkArtifactKey(jobId: string, name: string): void {
  if (!isJobId(jobId)) throw new ConfigError(`artifact job id ${JSON.stringify(jobId)} is not a job id`);
  if (!isArtifactName(name)) throw new ConfigError(`artifact name ${JSON.stringify(name)} must be 1-200 of A-Z a-z 0-9 _ . - (no path, not hidden)`);
}

/**
 * What `ctx.artifacts.put()` returns: a stable reference, not a URL. URLs expire; a reference
 * stored in a job's result stays valid, and the HTTP layer turns it into a fresh signed URL.
 */
export const ARTIFACT_REF_PREFIX = "offload-artifact:";

export function artifactRef(jobId: string, name: string): string {
  return `${ARTIFACT_REF_PREFIX}${jobId}/${name}`;
}

export function parseArtifactRef(value: string): { jobId: string; name: string } | undefined {
  if (!value.startsWith(ARTIFACT_REF_PREFIX)) return undefined;
  const [jobId, name, ...rest] = value.slice(ARTIFACT_REF_PREFIX.length).split("/");
  if (jobId === undefined || name === undefined || rest.length > 0) return undefined;
  return isJobId(jobId) && isArtifactName(name) ? { jobId, name } : undefined;
}

/** The `ctx.artifacts` a handler sees: bound to its own job, so it cannot write another job's files. */
export interface JobArtifacts {
  /** Stores a file for this job; returns a reference to put in the result (see ARTIFACT_REF_PREFIX). */
  put(name: string, body: ArtifactBody): Promise<string>;
}

export function jobArtifacts(store: () => ArtifactStore, jobId: string): JobArtifacts {
  return {
    async put(name, body) {
      checkArtifactKey(jobId, name);
      await store().put(jobId, name, body);
      return artifactRef(jobId, name);
    },
  };
}
