// JSON responses at the HTTP edge. Every error is `{ error: { code, message } }` with a fixed,
// short message: nothing from a stack, a query or a backend reaches the public.
export type HttpErrorCode = "BAD_REQUEST" | "FORBIDDEN" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "CONFLICT" | "INTERNAL" | "UNAVAILABLE";

const NO_STORE = "no-store";

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": NO_STORE, ...headers },
  });
}

export function jsonError(status: number, code: HttpErrorCode, message: string): Response {
  return json({ error: { code, message } }, status);
}

export const badRequest = (message: string): Response => jsonError(400, "BAD_REQUEST", message);
export const forbidden = (): Response => jsonError(403, "FORBIDDEN", "not allowed");
export const notFound = (what = "not found"): Response => jsonError(404, "NOT_FOUND", what);
export const methodNotAllowed = (allow: string): Response => {
  const response = jsonError(405, "METHOD_NOT_ALLOWED", "method not allowed");
  response.headers.set("allow", allow);
  return response;
};
export const internalError = (): Response => jsonError(500, "INTERNAL", "internal error");
/** The job store could not be reached: worth asking again shortly (load balancers and clients honour Retry-After). */
export const UNAVAILABLE_RETRY_AFTER_S = 2;
export const unavailable = (): Response => {
  const response = jsonError(503, "UNAVAILABLE", "job store unavailable, try again shortly");
  response.headers.set("retry-after", String(UNAVAILABLE_RETRY_AFTER_S));
  return response;
};
