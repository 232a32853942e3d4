// toNodeListener over a real node:http server: requests a Web Request cannot express, and
// clients that leave before the response is ready.
import assert from "node:assert/strict";
import { type IncomingMessage, type Server, type ServerResponse, createServer, request as httpRequest } from "node:http";
import { connect as connectHttp2, createServer as createHttp2Server } from "node:http2";
import { type AddressInfo, connect } from "node:net";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { sendResponse, toNodeListener } from "../../src/http/index.ts";

type Handler = (request: Request) => Promise<Response>;

async function listen(handler: Handler): Promise<{ server: Server; port: number }> {
  const server = createServer(toNodeListener(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Writes `raw` on one new connection and collects what comes back until `enough(text)` holds
 * (the test's timeout bounds a wait for an answer that never comes).
 */
function exchange(port: number, raw: readonly (string | Buffer)[], enough: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (enough(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(text));
    for (const part of raw) socket.write(part);
  });
}

/** One raw request with node's client, which (unlike fetch) sends what it is told to. */
function send(port: number, options: { method: string; path: string; headers?: Record<string, string> }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, ...options }, (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("toNodeListener", () => {
  it("answers a method or Host a Web Request refuses with a 4xx JSON error, not a 500", async () => {
    let calls = 0;
    const { server, port } = await listen(async () => {
      calls++;
      return new Response("ok");
    });
    try {
      const trace = await send(port, { method: "TRACE", path: "/jobs/x" });
      assert.equal(trace.status, 405);
      assert.deepEqual(JSON.parse(trace.body), { error: { code: "METHOD_NOT_ALLOWED", message: "method not allowed" } });
      const badHost = await send(port, { method: "GET", path: "/jobs/x", headers: { host: "bad host" } });
      assert.equal(badHost.status, 400);
      assert.deepEqual(JSON.parse(badHost.body), { error: { code: "BAD_REQUEST", message: "malformed request" } });
      assert.equal(calls, 0, "the handler never saw them");
      assert.equal((await send(port, { method: "GET", path: "/jobs/x" })).status, 200);
    } finally {
      await close(server);
    }
  });

  it("cancels a response body whose client left before the handler answered", { timeout: 10_000 }, async () => {
    let entered: () => void = () => {};
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    let cancelled: () => void = () => {};
    const bodyCancelled = new Promise<void>((resolve) => (cancelled = resolve));
    const { server, port } = await listen(async (request) => {
      entered();
      if (!request.signal.aborted) await new Promise((resolve) => request.signal.addEventListener("abort", resolve, { once: true }));
      // An endless body, as an event stream is: only a cancel ends it.
      return new Response(new ReadableStream<Uint8Array>({
        pull: (controller) => controller.enqueue(new TextEncoder().encode("tick\n")),
        cancel: () => cancelled(),
      }));
    });
    try {
      const req = httpRequest({ host: "127.0.0.1", port, path: "/jobs/x/events" });
      req.on("error", () => {}); // the client hangs up on purpose
      req.end();
      await handlerEntered;
      req.destroy();
      await bodyCancelled;
    } finally {
      await close(server);
    }
  });

  it("a slow client's backpressure does not pile up listeners on the response", async () => {
    // A response whose every write waits for a drain, as one to a slow client does.
    class SlowResponse extends Writable {
      constructor() {
        super({ highWaterMark: 1, write: (_chunk, _encoding, callback) => setImmediate(callback) });
      }
      writeHead(): this {
        return this;
      }
      flushHeaders(): void {}
    }
    const res = new SlowResponse();
    let mostCloseListeners = 0;
    let chunks = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        mostCloseListeners = Math.max(mostCloseListeners, res.listenerCount("close"));
        if (chunks++ < 30) controller.enqueue(new TextEncoder().encode("data: x\n\n"));
        else controller.close();
      },
    }, { highWaterMark: 0 });
    await sendResponse(res as unknown as ServerResponse, new Response(body));
    assert.equal(chunks, 31);
    assert.ok(mostCloseListeners <= 2, `${mostCloseListeners} close listeners at once`);
  });

  it("a request body the handler leaves unread does not stall the next request on the connection; a read body arrives whole", { timeout: 10_000 }, async () => {
    const { server, port } = await listen(async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/echo") return new Response(String((await request.arrayBuffer()).byteLength));
      return new Response("ignored"); // the body, a megabyte, is never read
    });
    try {
      const big = Buffer.alloc(1_000_000, 97);
      const statusLines = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1] ?? "");
      const text = await exchange(port, [
        `POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`, big,
        `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`, big,
        "GET /last HTTP/1.1\r\nHost: x\r\n\r\n",
      ], (t) => statusLines(t).length === 3 && t.endsWith("\r\n0\r\n\r\n"));
      assert.deepEqual(statusLines(text), ["200", "200", "200"], text.slice(0, 500));
      assert.match(text, /\r\n1000000\r\n/, "the read body arrived whole");
    } finally {
      await close(server);
    }
  });

  it("frames a streamed response for the client's HTTP version: no chunked encoding to HTTP/1.0", async () => {
    const { server, port } = await listen(async () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("data: one\n\n"));
          controller.close();
        },
      });
      // As Hono's streamSSE sets them: about the connection, not the response.
      return new Response(body, { headers: { "content-type": "text/event-stream", "transfer-encoding": "chunked", connection: "keep-alive" } });
    });
    try {
      const text = await exchange(port, ["GET /events HTTP/1.0\r\nHost: x\r\n\r\n"], () => false);
      const [head = "", body] = text.split("\r\n\r\n");
      assert.doesNotMatch(head, /transfer-encoding/i);
      assert.doesNotMatch(head, /keep-alive/i);
      assert.equal(body, "data: one\n\n", "the body as written, without chunk sizes");
    } finally {
      await close(server);
    }
  });

  it("serves HTTP/2 through node:http2's compatibility API: pseudo-headers are no request headers, and a request body is read", async () => {
    const listener = toNodeListener(async (request) => {
      const body = request.method === "POST" ? await request.text() : "";
      return new Response(`${request.method} ${new URL(request.url).host}${new URL(request.url).pathname} ${body}`, {
        headers: { "content-type": "text/plain", connection: "keep-alive" }, // a header HTTP/2 forbids
      });
    });
    const server = createHttp2Server((req, res) => listener(req as unknown as IncomingMessage, res as unknown as ServerResponse));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const client = connectHttp2(`http://127.0.0.1:${port}`);
    try {
      const ask = (headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> => new Promise((resolve, reject) => {
        const stream = client.request(headers);
        let status = 0;
        let text = "";
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => (text += chunk));
        stream.on("end", () => resolve({ status, text }));
        stream.on("error", reject);
        stream.end(body);
      });
      assert.deepEqual(await ask({ ":path": "/jobs/x" }), { status: 200, text: `GET 127.0.0.1:${port}/jobs/x ` });
      assert.deepEqual(await ask({ ":path": "/jobs/x/cancel", ":method": "POST" }, "a body"), { status: 200, text: `POST 127.0.0.1:${port}/jobs/x/cancel a body` });
    } finally {
      client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
