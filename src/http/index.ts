// offload/http: mount job status, SSE and cancel routes in any framework, and answer
// `202 Accepted` for work handed to a queue. See docs/http.md.
export { createJobsHttp, type JobsHttp, type JobsHttpOptions, type AcceptedOptions } from "./jobs-http.ts";
export { type Authorize, type JobAction, createJobToken, tokenAllows } from "./access.ts";
export type { PublicJob } from "./job-view.ts";
export { toNodeListener, sendResponse } from "./node.ts";
export {
  type ArtifactStore, type ArtifactInfo, type ArtifactBody, type StoredArtifact,
  LocalFolderStore, Signer, artifactRef, parseArtifactRef,
} from "../artifacts/index.ts";
