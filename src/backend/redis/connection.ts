// Backend URLs → ioredis clients. One URL shape per deployment:
//   redis://[user:pass@]host[:port][/db][?prefix=name&maxEvents=n]
//   rediss://…                              (TLS)
//   redis+cluster://host:port[,host:port…][?prefix=name]   (Redis Cluster, seed nodes)
// Our own query parameters are removed before ioredis sees the URL (it would read them as options).
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { BackendOpenError } from "../../core/errors.ts";

export interface RedisUrlOptions {
  readonly prefix: string | undefined;
  readonly maxEvents: number | undefined;
}

/**
 * Client settings that make the adapter survive the network: reconnect forever, and never
 * resend a command whose reply was lost (a script may already have run: running it twice is
 * worse than a visible error the worker loop retries). Auto-pipelining stays off: in ioredis 6 a
 * pipeline whose connection dies without resending never settles, and every later command
 * queues behind it. Commands are still written without waiting for earlier replies, and the
 * adapter batches work into scripts itself, so little is lost.
 */
export const CLIENT_OPTIONS: RedisOptions = {
  enableAutoPipelining: false,
  autoResendUnfulfilledCommands: false,
  autoResubscribe: false, // the change feed subscribes again itself, then tells its listeners
  retryStrategy: (times) => Math.min(50 * times, 1_000),
};

export function parseRedisUrl(url: string): { base: string; options: RedisUrlOptions } {
  const query = url.indexOf("?");
  const base = query < 0 ? url : url.slice(0, query);
  const params = new URLSearchParams(query < 0 ? "" : url.slice(query + 1));
  const maxEvents = params.get("maxEvents");
  if (maxEvents !== null && !(Number.isInteger(Number(maxEvents)) && Number(maxEvents) > 0)) {
    throw new BackendOpenError(url, "maxEvents must be a positive integer");
  }
  return { base, options: { prefix: params.get("prefix") ?? undefined, maxEvents: maxEvents === null ? undefined : Number(maxEvents) } };
}

export function createClient(url: string): Redis | Cluster {
  const { base } = parseRedisUrl(url);
  if (base.startsWith("redis+cluster://")) {
    const rest = base.slice("redis+cluster://".length).replace(/\/.*$/, "");
    const auth = rest.includes("@") ? rest.slice(0, rest.lastIndexOf("@")) : undefined;
    const hosts = rest.slice(rest.lastIndexOf("@") + 1).split(",").filter((h) => h !== "");
    if (hosts.length === 0) throw new BackendOpenError(url, "no cluster nodes (use redis+cluster://host:port,host:port)");
    const nodes = hosts.map((h) => {
      const [host, port] = h.split(":");
      return { host: host || "127.0.0.1", port: Number(port || 6379) };
    });
    const [user, password] = auth === undefined ? [undefined, undefined] : auth.split(":").map(decodeURIComponent);
    const redisOptions: RedisOptions = { ...CLIENT_OPTIONS, ...(password ? { password, ...(user ? { username: user } : {}) } : {}) };
    return new Cluster(nodes, { enableAutoPipelining: false, redisOptions, clusterRetryStrategy: (times) => Math.min(100 * times, 2_000) });
  }
  return new Redis(base, CLIENT_OPTIONS);
}

/**
 * Settles calls whose connection died under them. With autoResendUnfulfilledCommands off,
 * ioredis drops the commands it had written to a connection that closed, and their promises
 * never settle; a worker awaiting one would hang for good. Every call made while the connection
 * was ready is rejected when it closes ("outcome unknown", like any network error: the worker
 * loop retries and leases cover a script that did run). Calls made while disconnected wait in
 * ioredis's offline queue and are left alone.
 */
export class InFlightCalls {
  readonly #pending = new Set<(error: Error) => void>();

  constructor(client: Redis | Cluster) {
    client.on("close", () => {
      const rejects = [...this.#pending];
      this.#pending.clear();
      for (const reject of rejects) reject(new Error("redis connection closed before the reply; the outcome is unknown"));
    });
    this.#status = () => client.status;
  }

  readonly #status: () => string;

  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#status() !== "ready") return call();
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error): void => reject(error);
      this.#pending.add(fail);
      call().then(
        (value) => {
          this.#pending.delete(fail);
          resolve(value);
        },
        (error: unknown) => {
          this.#pending.delete(fail);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
