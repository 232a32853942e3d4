// toNodeListener over a real node:http server: requests a Web Request cannot express, and
// clients that leave before the response is ready.
import assert from "node:assert/strict";
import { type IncomingMessage, type Server, type ServerResponse, createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
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
});
