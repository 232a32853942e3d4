// Who may read or cancel a job over HTTP. Two ways in:
// - a scoped public token: signed, for one job, expiring, optionally allowing cancel. It lets a
//   browser follow its own job without the app's session (EventSource cannot send headers, so
//   the token also travels as ?token=);
// - the app's `authorize(request, job, action)` hook, e.g. comparing its session user to job.owner.
// Without a hook, jobs that have no owner are open to anyone holding their (unguessable) id and
// owned jobs need a token: owned means private by default.
import type { Signer } from "../artifacts/signer.ts";
import type { JobRecord } from "../core/job.ts";

export type JobAction = "read" | "cancel";

export type Authorize = (request: Request, job: JobRecord, action: JobAction) => boolean | Promise<boolean>;

type Scope = "r" | "rc";

export interface TokenOptions {
  /** Token lifetime in ms. */
  readonly ttlMs: number;
  /** Also allow POST /jobs/:id/cancel with this token. Default false. */
  readonly cancel?: boolean;
}

/** `<expires, base36>.<scope>.<signature>`: short enough for a query string. */
export function createJobToken(signer: Signer, jobId: string, options: TokenOptions): string {
  const expiresAt = signer.now() + options.ttlMs;
  const scope: Scope = options.cancel ? "rc" : "r";
  return `${expiresAt.toString(36)}.${scope}.${signer.sign("job-token", `${jobId}:${scope}`, expiresAt)}`;
}

/** True when `token` is a live token for this job that allows `action`. */
export function tokenAllows(signer: Signer, token: string, jobId: string, action: JobAction): boolean {
  const [expires, scope, signature, ...rest] = token.split(".");
  if (expires === undefined || scope === undefined || signature === undefined || rest.length > 0) return false;
  if (scope !== "r" && scope !== "rc") return false;
  if (!/^[0-9a-z]{1,12}$/.test(expires)) return false;
  if (!signer.verify("job-token", `${jobId}:${scope}`, parseInt(expires, 36), signature)) return false;
  return action === "read" || scope === "rc";
}

/**
 * The tokens a request carries: `Authorization: Bearer <token>` and `?token=`. Both are tried: an
 * app that sends its own bearer session on every request must still be able to follow the
 * token links of accepted().
 */
export function requestTokens(request: Request): string[] {
  const header = request.headers.get("authorization");
  const bearer = header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
  const query = new URL(request.url).searchParams.get("token");
  return [bearer, query].filter((t): t is string => t !== undefined && t !== null && t !== "");
}

export async function isAllowed(
  request: Request,
  job: JobRecord,
  action: JobAction,
  deps: { readonly signer: Signer; readonly authorize: Authorize | undefined },
): Promise<boolean> {
  if (requestTokens(request).some((token) => tokenAllows(deps.signer, token, job.id, action))) return true;
  if (deps.authorize) return (await deps.authorize(request, job, action)) === true;
  return job.owner === undefined;
}
