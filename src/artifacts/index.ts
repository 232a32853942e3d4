// Artifacts: files produced by jobs, kept behind a small store interface and served through
// signed, expiring URLs by offload/http.
export {
  type ArtifactBody, type ArtifactInfo, type ArtifactStore, type StoredArtifact, type JobArtifacts,
  ARTIFACT_REF_PREFIX, artifactRef, parseArtifactRef, isArtifactName, jobArtifacts,
} from "./store.ts";
export { LocalFolderStore, defaultArtifactsDir } from "./local-folder-store.ts";
export { Signer, type SignaturePurpose } from "./signer.ts";
