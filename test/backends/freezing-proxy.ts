// A TCP proxy that can go silent: freeze() stops relaying on every connection open at that moment,
// in both directions, without closing them. To the client it looks like a peer that vanished (a
// host gone, a NAT that forgot the flow): no reply, no reset, the socket still open. Connections
// made after the freeze are relayed as usual, as a reconnect would reach a healthy server.
// It can also stand for a name that moves in a failover (a managed database's DNS name, a virtual
// IP): retarget() sends new connections to another server, and drop() closes the open ones, as the
// old primary's flows end when it dies or is fenced.
import { once } from "node:events";
import { type Server, type Socket, connect, createServer } from "node:net";

export class FreezingProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #live = new Set<{ readonly client: Socket; readonly upstream: Socket; sent: string }>();
  readonly #all = new Set<Socket>();
  #connections = 0;
  readonly #losing = new Set<string>();
  #repliesLost = 0;
  #vanished = false;
  #target: { host: string; port: number };

  private constructor(server: Server, port: number, target: { host: string; port: number }) {
    this.#server = server;
    this.port = port;
    this.#target = target;
  }

  static async start(target: { host: string; port: number }): Promise<FreezingProxy> {
    let relay = (client: Socket): void => {
      client.destroy(); // not listening yet: cannot happen
    };
    const server = createServer((client) => relay(client));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    const proxy = new FreezingProxy(server, address.port, target);
    relay = (client) => proxy.#relay(client);
    return proxy;
  }

  /** Connections accepted so far, frozen ones included. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Stops relaying on every open connection (or those whose client has sent what `only` accepts:
   * the first 64 KiB it sent, as text) and leaves them open; returns how many were frozen.
   */
  freeze(only: (sent: string) => boolean = () => true): number {
    let frozen = 0;
    for (const pair of this.#live) {
      if (!only(pair.sent)) continue;
      const { client, upstream } = pair;
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.#live.delete(pair);
      frozen++;
    }
    return frozen;
  }

  /**
   * The next request that carries `marker` (a job id, say) reaches the server, but its reply and
   * every later one on that connection never come back: a reply lost after the server acted.
   */
  loseRepliesAfter(marker: string): void {
    this.#losing.add(marker);
  }

  /**
   * The server's host is gone: every open connection freezes, and new ones are accepted but never
   * answered (a connect that succeeds, a handshake that never completes).
   */
  vanish(): void {
    this.#vanished = true;
    this.freeze();
  }

  /**
   * New connections go to `target` from now on (the name moved to another server); open ones stay
   * where they are until they close or drop() closes them.
   */
  retarget(target: { host: string; port: number }): void {
    this.#target = target;
  }

  /** Closes every open connection, frozen ones too; returns how many clients it cut off. */
  drop(): number {
    let clients = 0;
    for (const socket of this.#all) {
      if (socket.localPort === this.port) clients++; // accepted here: a client's, not an upstream
      socket.destroy();
    }
    return clients;
  }

  /** Connections whose replies loseRepliesAfter() stopped so far. */
  get repliesLost(): number {
    return this.#repliesLost;
  }

  async close(): Promise<void> {
    for (const socket of this.#all) socket.destroy();
    this.#server.close();
    await once(this.#server, "close");
  }

  #relay(client: Socket): void {
    const target = this.#target;
    this.#connections++;
    if (this.#vanished) {
      this.#all.add(client);
      client.on("error", () => {});
      client.on("close", () => this.#all.delete(client));
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair = { client, upstream, sent: "" };
    this.#live.add(pair);
    client.on("data", (chunk: Buffer) => {
      if (pair.sent.length < 65_536) pair.sent += chunk.toString("latin1");
      if (this.#losing.size === 0) return;
      const text = chunk.toString("latin1");
      for (const marker of this.#losing) {
        if (!text.includes(marker)) continue;
        // Registered before the pipe below, so the replies stop before this request is relayed.
        this.#losing.delete(marker);
        this.#repliesLost++;
        upstream.unpipe(client);
        upstream.pause();
      }
    });
    for (const socket of [client, upstream]) {
      this.#all.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        this.#all.delete(socket);
        this.#live.delete(pair);
        // A side that really closes closes the other: only freeze() leaves a connection hanging.
        (socket === client ? upstream : client).destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
