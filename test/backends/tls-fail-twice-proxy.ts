// A TCP proxy in front of a TLS server that can make a client's TLS socket fail twice in one
// burst: a certificate the client refuses (one error), then a record it cannot decrypt (a second
// error on the same socket). ioredis listens for one error per socket, and the second, with no
// listener, is an uncaught exception that ends the process. In the wild the second record is the
// alert a server sends when the client ends its side mid-handshake; the proxy makes it certain.
import { once } from "node:events";
import { type AddressInfo, type Server, type Socket, connect, createServer } from "node:net";

/** A TLS application-data record of 17 zero bytes: no session key decrypts it. */
const UNREADABLE = Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x11]), Buffer.alloc(0x11)]);

export class TlsFailTwiceProxy {
  /**
   * While on, each new connection gets the server's first flight (one chunk on loopback) with the
   * unreadable record after it, in one write, and is then closed; while off, bytes pass both ways.
   * Connections already made are left as they are.
   */
  failing: boolean;
  /** Connections made while failing, then closed by the client: it has read the burst. */
  failedClosed = 0;
  readonly #server: Server;
  readonly #upstreamPort: number;
  readonly #open = new Set<Socket>();

  private constructor(upstreamPort: number, failing: boolean) {
    this.#server = createServer((client) => this.#accept(client));
    this.#upstreamPort = upstreamPort;
    this.failing = failing;
  }

  /**
   * A proxy to the TLS server on 127.0.0.1:`upstreamPort`, on `host` (default 127.0.0.1: another
   * loopback address is one a certificate for 127.0.0.1 does not name) and `port` (default: a free one).
   */
  static async start(upstreamPort: number, options: { failing: boolean; host?: string; port?: number }): Promise<TlsFailTwiceProxy> {
    const proxy = new TlsFailTwiceProxy(upstreamPort, options.failing);
    proxy.#server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
    await once(proxy.#server, "listening");
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  #accept(client: Socket): void {
    const failing = this.failing;
    const upstream = connect(this.#upstreamPort, "127.0.0.1");
    this.#open.add(client);
    client.pipe(upstream);
    if (failing) upstream.once("data", (chunk: Buffer) => client.end(Buffer.concat([chunk, UNREADABLE])));
    else upstream.pipe(client);
    client.on("error", () => {});
    upstream.on("error", () => {});
    upstream.on("close", () => client.destroy());
    client.on("close", () => {
      this.#open.delete(client);
      upstream.destroy();
      if (failing) this.failedClosed++;
    });
  }

  async close(): Promise<void> {
    const closed = once(this.#server, "close");
    this.#server.close();
    for (const socket of this.#open) socket.destroy();
    await closed;
  }
}
