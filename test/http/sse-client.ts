// A small Server-Sent Events client over fetch, for tests and the latency bench: yields parsed
// events as they arrive, and closes the connection on demand (as a browser tab that goes away).
export interface SseMessage {
  readonly event: string;
  readonly data: string;
  readonly id: string | undefined;
}

export interface SseConnection {
  readonly status: number;
  readonly headers: Headers;
  /** The next message; undefined when the server ended the stream. */
  next(): Promise<SseMessage | undefined>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal });
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ended = false;
  const queue: SseMessage[] = [];
  let event = "";
  let data: string[] = [];
  let id: string | undefined;

  const parse = (): void => {
    for (;;) {
      const newline = buffer.search(/\r\n|\n|\r/);
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) queue.push({ event: event || "message", data: data.join("\n"), id });
        event = "";
        data = [];
        id = undefined;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
  };

  return {
    status: response.status,
    headers: response.headers,
    async next() {
      while (queue.length === 0) {
        if (ended || !reader) return undefined;
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (chunk.done) {
          ended = true;
          return queue.shift();
        }
        buffer += chunk.value;
        parse();
      }
      return queue.shift();
    },
    close() {
      ended = true;
      controller.abort();
    },
  };
}

/** Reads messages until `until` holds for one (included) or the stream ends. */
export async function readUntil(sse: SseConnection, until: (m: SseMessage) => boolean): Promise<SseMessage[]> {
  const seen: SseMessage[] = [];
  for (;;) {
    const message = await sse.next();
    if (!message) return seen;
    seen.push(message);
    if (until(message)) return seen;
  }
}
