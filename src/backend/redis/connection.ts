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
 * worse than a visible error the worker loop retries).
 */
export const CLIENT_OPTIONS: RedisOptions = {
  enableAutoPipelining: true,
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
    return new Cluster(nodes, { enableAutoPipelining: true, redisOptions, clusterRetryStrategy: (times) => Math.min(100 * times, 2_000) });
  }
  return new Redis(base, CLIENT_OPTIONS);
}
