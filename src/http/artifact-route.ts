// Signed, expiring download URLs for artifacts, and the response that serves one.
// The URL is the permission (like a presigned S3 URL): whoever holds it may download until it
// expires; the signature covers the job id, the file name and the expiry, so changing any of
// them, or waiting too long, gets 403.
import type { Signer } from "../artifacts/signer.ts";
import type { ArtifactStore } from "../artifacts/store.ts";
import { forbidden, notFound } from "./responses.ts";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  pdf: "application/pdf",
  txt: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  json: "application/json",
  eml: "message/rfc822",
  png: "image/png",
  jpg: "image/jpeg",
  zip: "application/zip",
};

export function signedArtifactPath(signer: Signer, basePath: string, jobId: string, name: string, ttlMs: number): string {
  const expires = signer.now() + ttlMs;
  const sig = signer.sign("artifact", `${jobId}/${name}`, expires);
  return `${basePath}/${jobId}/artifacts/${encodeURIComponent(name)}?expires=${expires}&sig=${sig}`;
}

export async function serveArtifact(
  request: Request,
  key: { readonly jobId: string; readonly name: string },
  deps: { readonly signer: Signer; readonly store: ArtifactStore },
): Promise<Response> {
  const query = new URL(request.url).searchParams;
  // The expiry as signed: decimal digits only (Number() would also take "0x…", "1.7e12" or a
  // leading zero, other spellings of a signed value).
  const written = query.get("expires") ?? "";
  const expires = /^[1-9][0-9]{0,15}$/.test(written) ? Number(written) : Number.NaN;
  const sig = query.get("sig") ?? "";
  if (!deps.signer.verify("artifact", `${key.jobId}/${key.name}`, expires, sig)) return forbidden();
  const artifact = await deps.store.get(key.jobId, key.name);
  if (!artifact) return notFound("no such artifact");
  const extension = key.name.includes(".") ? (key.name.split(".").pop() ?? "").toLowerCase() : "";
  // A HEAD response drops the body without cancelling it, which would leave the file open.
  const head = request.method === "HEAD";
  if (head) await artifact.body.cancel();
  return new Response(head ? null : artifact.body, {
    status: 200,
    headers: {
      "content-type": CONTENT_TYPES[extension] ?? "application/octet-stream",
      "content-length": String(artifact.size),
      "content-disposition": `attachment; filename="${key.name}"`,
      "cache-control": "private, no-store",
      "x-content-type-options": "nosniff",
    },
  });
}
