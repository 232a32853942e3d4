// Runs a Web-standard handler on node:http (and so in Express and Fastify, which sit on it), and
// on node:http2's compatibility API.
// Two things matter for SSE: headers go out at once, and when the client goes away the
// response body is cancelled and the request's signal aborted, so the stream frees what it holds.
// Express strips its mount path from req.url; req.originalUrl keeps it, and the handlers route
// on the full path.
import type { IncomingMessage, ServerResponse } from "node:http";

/** Methods the fetch standard forbids in a Request. */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);
/**
 * Headers about the connection, not the response (RFC 9110 §7.6.1): node frames the response for
 * the connection it has. Copied from a Web Response, `transfer-encoding: chunked` went to HTTP/1.0
 * clients (nginx's proxy_pass by default), which cannot read chunks.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

type FetchHandler = (request: Request) => Promise<Response> | Response;
/** A plain node request listener: errors are answered (or the socket closed), never thrown. */
type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

export function toNodeListener(handler: FetchHandler): NodeListener {
  return (req, res) => {
    void serve(handler, req, res);
  };
}

async function serve(handler: FetchHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  res.once("close", abort);
  let request: Request;
  try {
    request = toRequest(req, controller.signal);
  } catch {
    // node:http takes requests a Web Request refuses (TRACE, a Host that is no URL host).
    const method = FORBIDDEN_METHODS.has(req.method ?? "");
    res.writeHead(method ? 405 : 400, { "content-type": "application/json; charset=utf-8" });
    res.end(JSON.stringify({ error: method
      ? { code: "METHOD_NOT_ALLOWED", message: "method not allowed" }
      : { code: "BAD_REQUEST", message: "malformed request" } }));
    res.off("close", abort);
    return;
  }
  try {
    const response = await handler(request);
    await sendResponse(res, response, controller.signal);
  } catch (error) {
    console.error("offload/http:", error);
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ error: { code: "INTERNAL", message: "internal error" } }));
    } else {
      res.destroy();
    }
  } finally {
    res.off("close", abort);
  }
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? "/";
  // HTTP/2 (node:http2's compatibility API, Fastify with http2: true) names the host :authority.
  const authority = req.headers[":authority"];
  const host = req.headers.host ?? (typeof authority === "string" ? authority : "localhost");
  const protocol = "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":")) continue; // HTTP/2 pseudo-headers: no header a Web Request can hold
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD" && !req.readableEnded;
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal };
  if (hasBody) {
    init.body = lazyBody(req);
    init.duplex = "half";
  }
  return new Request(new URL(path, `${protocol}://${host}`), init);
}

/**
 * The request body, read from `req` only when the handler reads it. A body the handler leaves
 * unread (POST cancel has none to read) stays with node:http, which discards it once the response
 * is sent, so a keep-alive connection can carry the next request. (Readable.toWeb read it at once
 * into a queue, then paused the socket when the queue was full: the next request on that
 * connection was never answered.)
 */
function lazyBody(req: IncomingMessage): ReadableStream<Uint8Array> {
  let chunks: AsyncIterator<unknown> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        chunks ??= req.iterator({ destroyOnReturn: false });
        const { value, done } = await chunks.next();
        if (done) controller.close();
        else controller.enqueue(value instanceof Uint8Array ? value : new TextEncoder().encode(String(value)));
      },
      async cancel() {
        // A handler that stops reading half way: discard the rest, keep the connection.
        await chunks?.return?.();
        req.resume();
      },
    },
    { highWaterMark: 0 }, // no read ahead: nothing is taken from req before the handler asks
  );
}

/** Writes a Web Response to a node response, streaming its body with backpressure. */
export async function sendResponse(res: ServerResponse, response: Response, signal?: AbortSignal): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie" && !HOP_BY_HOP.has(name)) headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const cancel = (): void => {
    reader.cancel().catch(() => {});
  };
  // A client that left before the handler answered sends no further close or abort event.
  if (signal?.aborted || res.destroyed) {
    cancel();
    res.destroy();
    return;
  }
  res.flushHeaders();
  signal?.addEventListener("abort", cancel, { once: true });
  res.once("close", cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value) && !res.destroyed) await drainOrClose(res);
      if (res.destroyed) {
        cancel();
        break;
      }
    }
    res.end();
  } catch {
    res.destroy(); // the body failed or was cancelled because the client left
  } finally {
    signal?.removeEventListener("abort", cancel);
    res.off("close", cancel);
  }
}

/** Removes both listeners whichever fires, so a long stream does not pile them up. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}
