// Backend URLs → ioredis clients. One URL shape per deployment:
//   redis://[user:pass@]host[:port][/db][?prefix=name&maxEvents=n&replyTimeout=10s]
//   rediss://…                              (TLS)
//   redis+cluster://[user:pass@]host:port[,host:port…][?prefix=name]   (Redis Cluster, seed nodes)
//   redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[?prefix=name&sentinelPassword=p]
//                                           (Sentinel: the sentinels, and the master group to follow)
//   rediss+cluster://…, rediss+sentinel://…   (the same over TLS, to every node and sentinel)
//   ?tlsCaFile=/path/ca.pem                  (with every rediss form: trust this CA, as well as the system's)
//   ?tlsCertFile=/path/client.crt&tlsKeyFile=/path/client.key   (with every rediss form: a client certificate)
// Our own query parameters are removed before ioredis sees the URL (it would read them as options).
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { positiveMs } from "../../core/duration.ts";
import { BackendOpenError } from "../../core/errors.ts";
import { nearMiss } from "../../core/near-miss.ts";
import { type Address, type ConnectionFailures, connectionError, connectionFailures, failureMet, keepHostName, latestConnectionFailure, tlsClusterSubscriber, tlsConnector, tlsSentinelConnector, tlsSettings } from "./tls.ts";

export interface RedisUrlOptions {
  readonly prefix: string | undefined;
  readonly maxEvents: number | undefined;
  readonly replyTimeoutMs: number | undefined;
}

/**
 * How long a command may wait for its reply before its connection is presumed dead, dropped and
 * made again. A peer that vanished without closing the connection (a host gone, a NAT or firewall
 * that forgot the flow, a failover that moved an address) sends neither data nor a reset, and
 * without this every call on that connection waits for ever: a worker that silently stops.
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 10_000;

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
  // ioredis's ready check asks INFO before a connection may carry calls, and a server where INFO is
  // renamed away (a common hardening, with CONFIG) fails it: the client reconnected for ever and
  // every call failed with "no connection". Where an ACL denies INFO, ioredis printed a warning on
  // each connection (every 2 s under `timeout 2`). What the check waits for is a server still
  // loading its data; without it, calls then are answered LOADING, which the adapter takes as
  // "not run" (sent again, like a claim or an ack after a failover), and a replica reached behind
  // Sentinel answers writes READONLY, which makes the client reconnect (below).
  enableReadyCheck: false,
  retryStrategy: (times) => Math.min(50 * times, 1_000),
  // After a failover the old master answers writes with READONLY until it drops us: reconnect
  // (to the new master, through Sentinel or DNS) without resending; the call fails as "outcome
  // unknown" like every other network error, and the worker retries it.
  // Redis before 7 wraps an error raised inside a script ("ERR Error running script …: -READONLY
  // …"), and every write of the adapter is a script: look for the code there too.
  reconnectOnError: (error) => (error.message.startsWith("READONLY") || error.message.includes(": -READONLY ") ? 1 : false),
};

/** The query parameters a Redis URL may carry: ioredis sees none of the query. */
const URL_PARAMS = ["prefix", "maxEvents", "replyTimeout", "sentinelPassword", "tlsCaFile", "tlsCertFile", "tlsKeyFile"] as const;

export function parseRedisUrl(url: string): { base: string; options: RedisUrlOptions } {
  const query = url.indexOf("?");
  const base = query < 0 ? url : url.slice(0, query);
  const params = new URLSearchParams(query < 0 ? "" : url.slice(query + 1));
  for (const name of params.keys()) {
    if ((URL_PARAMS as readonly string[]).includes(name)) continue;
    // Dropped without a word, a misspelt ?replyTimout= or an ioredis option (?family=6) did nothing.
    const guess = nearMiss(name, URL_PARAMS);
    throw new BackendOpenError(url, `unknown parameter ${JSON.stringify(name)}${guess ? ` (did you mean ${guess}?)` : ""}; a Redis URL takes ${URL_PARAMS.join(", ")}. Other ioredis options: new RedisBackend({ client })`);
  }
  const maxEvents = params.get("maxEvents");
  // Written out in decimal digits: Number() would also take "1e3", "0x10" or " 7 ", and a number
  // past 2^53 is no longer the one written.
  if (maxEvents !== null && !(/^[0-9]+$/.test(maxEvents) && Number(maxEvents) >= 1 && Number.isSafeInteger(Number(maxEvents)))) {
    throw new BackendOpenError(url, `maxEvents must be a whole number ≥ 1 in decimal digits, got ${JSON.stringify(maxEvents)}`);
  }
  const replyTimeout = params.get("replyTimeout");
  return {
    base,
    options: {
      prefix: params.get("prefix") ?? undefined,
      maxEvents: maxEvents === null ? undefined : Number(maxEvents),
      replyTimeoutMs: replyTimeout === null ? undefined : replyTimeoutMs(url, replyTimeout),
    },
  };
}

function replyTimeoutMs(url: string, value: string): number {
  try {
    return positiveMs(value, "replyTimeout");
  } catch (error) {
    throw new BackendOpenError(url, (error as Error).message); // a URL that cannot be opened as given
  }
}

/** An ioredis client for `url`; `replyTimeoutMs` overrides the URL's ?replyTimeout=. */
export function createClient(url: string, replyTimeoutMs?: number): Redis | Cluster {
  const { base, options } = parseRedisUrl(url);
  // ioredis destroys a connection that received nothing this long while replies were due.
  const socketTimeout = replyTimeoutMs ?? options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
  const scheme = /^([a-z+]+):\/\//i.exec(base)?.[1]?.toLowerCase() ?? "";
  const tls = tlsSettings(url, scheme, { ca: pathParam(url, "tlsCaFile"), cert: pathParam(url, "tlsCertFile"), key: pathParam(url, "tlsKeyFile") });
  const failures: ConnectionFailures = { latest: undefined, alert: undefined };
  const clientOptions: RedisOptions = { ...CLIENT_OPTIONS, socketTimeout, ...(tls ? { tls, Connector: tlsConnector(failures) } : {}) };
  const kept = <C extends Redis | Cluster>(client: C): C => {
    if (tls) connectionFailures.set(client, failures);
    return client;
  };
  if (scheme === "redis+cluster" || scheme === "rediss+cluster") {
    const { nodes, auth } = seedNodes(url, base.slice(scheme.length + 3).replace(/\/.*$/, ""), `${scheme}://host:port,host:port`, 6379);
    const redisOptions: RedisOptions = { ...clientOptions, ...auth };
    // retryDelayOnFailover 0: the Cluster would otherwise send again a call whose node connection
    // closed under it (a reply timeout on a busy server, a killed connection), though it may have
    // run: a script run twice. It fails as "outcome unknown" instead, as on one server.
    // Over TLS, node names are kept as given instead of being resolved to addresses first: a
    // certificate names the host (ElastiCache's and most managed clusters' do), and a connection
    // made to its address fails the name check.
    const cluster = kept(new Cluster(nodes, {
      enableAutoPipelining: false, redisOptions, retryDelayOnFailover: 0, clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
      ...(tls ? { dnsLookup: keepHostName } : {}),
    }));
    if (tls) tlsClusters.set(cluster, { nodeOptions: redisOptions, seeds: nodes, failures });
    return cluster;
  }
  if (scheme === "redis+sentinel" || scheme === "rediss+sentinel") {
    const rest = base.slice(scheme.length + 3);
    const slash = rest.indexOf("/");
    const name = slash < 0 ? "" : decoded(url, rest.slice(slash + 1).replace(/\/+$/, ""), "the master group name");
    if (name === "" || name.includes("/")) throw new BackendOpenError(url, "no master group name (use redis+sentinel://host:port,host:port/<name>)");
    const { nodes, auth } = seedNodes(url, slash < 0 ? rest : rest.slice(0, slash), "redis+sentinel://host:port,host:port/<name>", 26379);
    const sentinelPassword = new URLSearchParams(url.includes("?") ? url.slice(url.indexOf("?") + 1) : "").get("sentinelPassword");
    return kept(new Redis({
      ...clientOptions,
      ...auth,
      sentinels: nodes,
      name,
      ...(sentinelPassword === null ? {} : { sentinelPassword }),
      // The sentinels over TLS too: they are reached on the same network as the data nodes.
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls, Connector: tlsSentinelConnector(failures) } : {}),
      // Sentinel announces a new master (+switch-master): leave the old one at once instead of
      // waiting for it to refuse a write.
      failoverDetector: true,
      sentinelRetryStrategy: (times) => Math.min(100 * times, 2_000),
    }));
  }
  return kept(new Redis(base, clientOptions));
}

/** What a Cluster over TLS made by createClient was made with, for its change feed's connection. */
const tlsClusters = new WeakMap<Cluster, { nodeOptions: RedisOptions; seeds: readonly Address[]; failures: ConnectionFailures }>();

/**
 * A client for the change feed to subscribe on, made like `client`: its duplicate, or for a
 * Cluster over TLS made here, one connection to one of its nodes (see tlsClusterSubscriber).
 */
export function subscriberClient(client: Redis | Cluster): Redis | Cluster {
  if (client instanceof Redis) return client.duplicate();
  const tls = tlsClusters.get(client);
  return tls === undefined ? client.duplicate() : tlsClusterSubscriber(client, tls.nodeOptions, tls.seeds, tls.failures);
}

/**
 * A query parameter that holds a file path, percent-decoded only: read as a form (URLSearchParams),
 * a "+" in it became a space, and /etc/ssl/c++/ca.pem named a file that does not exist.
 */
function pathParam(url: string, name: string): string | null {
  const raw = new RegExp(`[?&]${name}=([^&#]*)`).exec(url)?.[1];
  return raw === undefined ? null : decoded(url, raw, `?${name}=`);
}

/**
 * The host:port list of a cluster or sentinel URL, and its credentials (for the data nodes), read
 * as URL parsers read an authority (and as ioredis reads a redis:// URL): user and password
 * split at the first colon, so a password may hold one; IPv6 addresses in brackets.
 */
function seedNodes(url: string, rest: string, shape: string, defaultPort: number): { nodes: Array<{ host: string; port: number }>; auth: { username?: string; password?: string } } {
  const at = rest.lastIndexOf("@");
  const hosts = rest.slice(at + 1).split(",").filter((h) => h !== "");
  if (hosts.length === 0) throw new BackendOpenError(url, `no nodes (use ${shape})`);
  const nodes = hosts.map((h) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*))(?::(\d*))?$/.exec(h);
    if (!match) throw new BackendOpenError(url, `bad node ${h} (use host:port, or [ipv6]:port)`);
    const port = match[3] ? Number(match[3]) : defaultPort;
    if (port <= 0 || port > 65_535) throw new BackendOpenError(url, `bad port in ${h}`);
    return { host: match[1] ?? (match[2] || "127.0.0.1"), port };
  });
  if (at < 0) return { nodes, auth: {} };
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(":");
  const user = decoded(url, colon < 0 ? userinfo : userinfo.slice(0, colon), "the user name");
  const password = colon < 0 ? "" : decoded(url, userinfo.slice(colon + 1), "the password");
  return { nodes, auth: password ? { password, ...(user ? { username: user } : {}) } : {} };
}

/** Percent-decodes a part of `url`; bad encoding is the URL's fault, said as such (naming the part, never quoting it). */
function decoded(url: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new BackendOpenError(url, `bad percent-encoding in ${what}`);
  }
}

/** A call was written to a connection that closed before its reply came: it may or may not have run. */
export class ReplyLostError extends Error {
  constructor() {
    super("redis connection closed before the reply; the outcome is unknown");
    this.name = "ReplyLostError";
  }
}

/**
 * A call made while the client was (re)connecting, and still not sent when its time was up: the
 * server stayed out of reach (a Sentinel or Cluster client tries to connect for ever, and ioredis
 * kept such a call queued for as long: `offload queues` against a dead Sentinel never returned).
 */
export class NoConnectionError extends Error {
  /**
   * `lastError`: why the latest connection attempt failed, when the client said. A server that
   * answers and then closes (maxclients reached, a refused password, a command the handshake
   * needs renamed away) is reachable: "is the server reachable?" alone sent users to the network.
   */
  constructor(waitedMs: number, lastError?: string) {
    const why = lastError === undefined ? "is the server reachable?" : `last connection error: ${lastError}`;
    super(`redis: no connection within ${waitedMs} ms (${why}); the call was not sent`);
    this.name = "NoConnectionError";
  }
}

/**
 * The server's error reply that `error` carries, if it does: a ReplyError, or the reply ioredis
 * quotes when it came before any command was sent (maxclients answers at once, then closes).
 */
function serverAnswer(error: Error): string | undefined {
  if (error.name === "ReplyError") return error.message;
  return /^Command queue state error\..* Last error: (.+)$/s.exec(error.message)?.[1];
}

/** ioredis states in which a connection is being made: a call now would wait in its offline queue. */
const CONNECTING: ReadonlySet<string> = new Set(["connecting", "connect", "reconnecting"]);

/**
 * Error replies that say the server did not run the call: a replica, a server still loading, a
 * cluster not serving, a master short of the replicas `min-replicas-to-write` asks for (as a
 * promoted replica is for about 10 s after a Sentinel failover), a server busy with another
 * client's script past `busy-reply-threshold` (BUSY: refused before it ran, and over once that
 * script ends, usually within milliseconds: an enqueue failed 503 for a prune that ran 20 ms
 * over a low threshold). In a script, the refusal comes at its first write, and the condition
 * cannot change while the script runs: nothing was written.
 */
const NOT_RUN = /(?:^|: -)(?:READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|BUSY) /;

/**
 * May a failed call be sent again? Yes when no reply came (its connection closed or timed out
 * after it was written: the outcome is unknown) or when the server said it did not run it; no for
 * every other answer from the server, and no for a call that waited for a connection until it was
 * given up (MaxRetriesPerRequestError from ioredis, NoConnectionError from InFlightCalls: never
 * written, and Redis has been away for seconds).
 */
export function resendable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "ReplyError") return NOT_RUN.test(error.message);
  // A Cluster client redirected more times than its limit (a slot being moved: TRYAGAIN, ASK and
  // MOVED all say the call did not run there) gives up with this error of its own.
  if (error.message.startsWith("Too many Cluster redirections.")) return /Last error: ReplyError: (?:TRYAGAIN|CLUSTERDOWN|MOVED|ASK) /.test(error.message);
  // A Cluster fails a call whose node connection closed with ioredis's own "Connection is closed."
  return error instanceof ReplyLostError || error.message === "Connection is closed." || error.message.startsWith("Socket timeout.");
}

/** Refusals of a server that may take the call later: full (OOM), unable to persist (MISCONF). */
const REFUSED_FOR_NOW = /(?:^|: -)(?:OOM|MISCONF) /;

/**
 * Redis refused the call before it wrote anything, for a reason that can pass: it is not sent again
 * at once (it would be refused again), but the app may try later: its calls get a
 * BackendUnavailableError (client/backend-errors.ts).
 */
export function refusedForNow(error: unknown): boolean {
  return error instanceof Error && error.name === "ReplyError" && REFUSED_FOR_NOW.test(error.message);
}

/**
 * A call given up before it was written (no connection in time): nothing of it reached the
 * server. For a resend of a call whose outcome is unknown, not an answer (lost-replies.ts).
 */
export function notSent(error: unknown): boolean {
  return error instanceof NoConnectionError || (error instanceof Error && error.name === "MaxRetriesPerRequestError");
}

/**
 * Settles calls whose connection died under them. With autoResendUnfulfilledCommands off,
 * ioredis drops the commands it had written to a connection that closed, and their promises
 * never settle; a worker awaiting one would hang for good. Every call written to a connection is
 * rejected when that connection closes ("outcome unknown", like any network error: the worker
 * loop retries and leases cover a script that did run). A call made while the client is (re)connecting
 * is held here, not handed to ioredis, until the connection is ready: then it is sent, in the order
 * calls were made. Held past `connectWithinMs` (the reply timeout), it fails with NoConnectionError,
 * never having been sent, so it cannot run later behind the caller's back, as a call left in
 * ioredis's offline queue would once the server came back. A call made in any other state
 * without a connection (a lazyConnect client not started) waits in ioredis's offline queue, and is
 * tracked like the others once the connection is ready.
 */
export class InFlightCalls {
  /** Calls written to the current connection (or about to be, once it is ready). */
  readonly #written = new Set<(error: Error) => void>();
  /** Calls in the offline queue: not on a connection yet. */
  readonly #queued = new Set<(error: Error) => void>();
  /** Calls held while the client connects, oldest first. */
  readonly #held: Array<{ readonly send: () => void; readonly fail: (error: Error) => void; readonly timer: NodeJS.Timeout }> = [];
  readonly #status: () => string;
  readonly #connectWithinMs: number;
  /** The client's latest error since its connection was last ready: told with NoConnectionError. */
  #lastError: Error | undefined;
  /** The latest error reply the server gave since then (see #whyNoConnection). */
  #lastAnswer: string | undefined;
  /** The latest connection was accepted (TCP), and is not closed yet. */
  #accepted = false;
  /** The latest error was that connection reset, before it was ready (see #whyNoConnection). */
  #closedAtOnce = false;
  #closed = false;

  /** What the connections made for a TLS client met (a Cluster drops its slot refreshes' errors). */
  readonly #failures: ConnectionFailures | undefined;

  constructor(client: Redis | Cluster, connectWithinMs: number = DEFAULT_REPLY_TIMEOUT_MS) {
    this.#failures = latestConnectionFailure(client);
    this.#status = () => client.status;
    this.#connectWithinMs = connectWithinMs;
    client.on("close", () => {
      const rejects = [...this.#written];
      this.#written.clear();
      for (const reject of rejects) reject(new ReplyLostError());
    });
    client.on("connect", () => (this.#accepted = true));
    client.on("close", () => (this.#accepted = false));
    client.on("error", (error: unknown) => {
      if (!(error instanceof Error)) return;
      this.#lastError = error;
      this.#lastAnswer = serverAnswer(error) ?? this.#lastAnswer;
      this.#closedAtOnce = this.#accepted && this.#status() !== "ready" && "code" in error && (error.code === "EPIPE" || error.code === "ECONNRESET");
    });
    // ioredis writes its offline queue right after "ready" is emitted.
    client.on("ready", () => {
      this.#lastError = undefined;
      this.#lastAnswer = undefined;
      if (this.#failures) {
        this.#failures.latest = undefined;
        this.#failures.alert = undefined;
      }
      for (const reject of this.#queued) this.#written.add(reject);
      this.#queued.clear();
      // ioredis sets the status at once and emits "ready" on a later tick: a connection lost in
      // between leaves the held calls held, under their timers, rather than in ioredis's queue.
      if (this.#status() !== "ready") return;
      for (const held of this.#held.splice(0)) {
        clearTimeout(held.timer);
        held.send();
      }
    });
    // The client ended (its owner may still connect it again): nothing held will be sent.
    client.on("end", () => this.#failHeld());
  }

  /**
   * Fails every held call at once, and every later one: the backend is closing. (ioredis's
   * disconnect() during a reconnect leaves its status "reconnecting", and emits no "end".)
   */
  close(): void {
    this.#closed = true;
    this.#failHeld();
  }

  #failHeld(): void {
    for (const held of this.#held.splice(0)) {
      clearTimeout(held.timer);
      held.fail(new Error("Connection is closed."));
    }
  }

  run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("Connection is closed."));
    // Held while a connection is being made, and also while earlier calls are still held (the
    // status already says "ready", the event has not come yet): calls go out in the order made.
    if (!CONNECTING.has(this.#status()) && this.#held.length === 0) return this.#send(call);
    return new Promise<T>((resolve, reject) => {
      const held = {
        send: () => {
          this.#send(call).then(resolve, reject);
        },
        fail: reject,
        timer: setTimeout(() => {
          const at = this.#held.indexOf(held);
          if (at >= 0) this.#held.splice(at, 1);
          reject(new NoConnectionError(this.#connectWithinMs, this.#whyNoConnection()));
        }, this.#connectWithinMs),
      };
      this.#held.push(held);
    });
  }

  /**
   * Why the client has no connection, as far as it can tell. A server that refuses a client
   * answers with an error and closes the connection, and the client's next write fails with
   * ECONNRESET or EPIPE: the answer, when the client read it (a password refused, a command of the
   * handshake renamed away), says more than the reset, unless nothing listens any more. At
   * maxclients Redis answers at once, before the client has sent anything, and the client's first
   * write usually meets the closed connection before the answer is read: said as such.
   */
  #whyNoConnection(): string | undefined {
    const last = this.#lastError;
    // A TLS handshake with a server that does not speak TLS on that port waits for an answer
    // that never comes: no error at all.
    if (last === undefined) return this.#failures === undefined ? undefined : "no TLS connection was made: is the server reachable, and does it take TLS on that port?";
    // A Cluster's own error names no cause ("Failed to refresh slots cache.", or its node
    // connections' "Connection is closed."): what its connections met does. A Sentinel client's
    // likewise ends with its sentinels' "Connection is closed.".
    const met = this.#failures === undefined ? undefined : failureMet(this.#failures);
    if (met !== undefined && (last.name === "ClusterAllFailedError" || last.message === "Connection is closed.")) return connectionError(met);
    const sentinels = /^(All sentinels are unreachable\..*) Last error: Connection is closed\.$/s.exec(last.message)?.[1];
    if (met !== undefined && sentinels !== undefined) return `${sentinels} Last error: ${connectionError(met)}`;
    const gone = "code" in last && (last.code === "ECONNREFUSED" || last.code === "EHOSTUNREACH" || last.code === "ETIMEDOUT");
    if (this.#lastAnswer !== undefined && !gone) return this.#lastAnswer;
    if (this.#closedAtOnce) {
      // Over TLS, a server that refuses the client's certificate closes the connection too: its
      // alert, read on another attempt, says so (see failureMet).
      const alert = this.#failures?.alert;
      if (alert !== undefined) return connectionError(alert);
      const or = this.#failures === undefined ? ", or when it takes TLS connections only (rediss://)" : ", or when it requires a client certificate (?tlsCertFile=, ?tlsKeyFile=) or refuses the one given";
      return `${last.message}: the server accepted each connection and closed it at once, as Redis does when maxclients is reached${or}`;
    }
    return serverAnswer(last) ?? connectionError(last);
  }

  #send<T>(call: () => Promise<T>): Promise<T> {
    const where = this.#status() === "ready" ? this.#written : this.#queued;
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error): void => reject(error);
      where.add(fail);
      const settled = (): void => {
        this.#written.delete(fail);
        this.#queued.delete(fail);
      };
      call().then(
        (value) => {
          settled();
          resolve(value);
        },
        (error: unknown) => {
          settled();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}

/**
 * Closes a client: QUIT lets pending replies arrive, then disconnect() also stops what QUIT does
 * not (a Sentinel client's failover detector keeps its own connections to the sentinels, which
 * would otherwise reconnect for ever and keep the process alive). QUIT is sent only on a ready
 * connection, and waited for at most `quitWithinMs`: while Redis is unreachable it would sit in
 * the offline queue until Redis came back, and close() with it. disconnect() then fails what is
 * still queued, so nobody waits for a reply that cannot come.
 */
export async function closeClient(client: Redis | Cluster, quitWithinMs = 2_000): Promise<void> {
  if (client.status === "ready") {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, quitWithinMs)));
    await Promise.race([client.quit().then(() => {}, () => {}), gaveUp]);
    clearTimeout(timer);
  }
  client.disconnect();
}
