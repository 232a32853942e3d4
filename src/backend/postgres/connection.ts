// Turns a postgres:// URL and options into the settings of one backend: the pg pool config, the
// schema, and whether to migrate at open. Offload's own query parameters (schema, migrate, pool,
// poll, replyTimeout, pooler, listenUrl) are taken out of the URL; everything else (sslmode,
// application_name, ...) goes to pg.
import pg from "pg";
import { type Duration, positiveMs } from "../../core/duration.ts";
import { ConfigError, withoutPassword } from "../../core/errors.ts";
import { nearMiss } from "../../core/near-miss.ts";
import { DEFAULT_SCHEMA, checkSchemaName } from "./queries.ts";

export interface PostgresOptions {
  /** postgres://user:pass@host:port/db?schema=offload&migrate=true&pool=10 */
  readonly url: string;
  /** The schema holding Offload's tables. Default: the URL's ?schema=, else "offload". */
  readonly schema?: string;
  /** Apply pending migrations at open (under an advisory lock). Default true; `offload migrate` does it otherwise. */
  readonly migrate?: boolean;
  /** Connections in the pool, besides the one LISTEN connection. Default 10. */
  readonly poolSize?: number;
  /**
   * Safety poll: watchers are called this often even when no notification arrived, ms. Default
   * 5000; 1000 behind a transaction pooler with no `listenUrl`, where polling is all there is.
   */
  readonly pollMs?: number;
  /**
   * "transaction": the URL is a pooler in transaction mode (PgBouncer `pool_mode = transaction`,
   * Supabase's port 6543, Neon's -pooler hosts), which hands each transaction to any server
   * session: no named prepared statements, no session settings, no LISTEN through it. Default:
   * the URL's ?pooler=, else "session" (a direct connection or a session-mode pool).
   */
  readonly pooler?: "transaction" | "session";
  /**
   * Where the one LISTEN session connects, when the URL cannot hold one (a transaction pooler):
   * a direct connection to the same database. Without it, behind a transaction pooler, workers
   * find new work by polling (`pollMs`). Default: the URL's ?listenUrl=, else the URL itself
   * (none behind a transaction pooler).
   */
  readonly listenUrl?: string;
  /**
   * How long a statement may wait for its reply before its connection is presumed dead and
   * dropped (the call fails; the pool connects again). Default: the URL's ?replyTimeout=, else
   * "30s". Also bounds making a connection. Migrations are exempt.
   */
  readonly replyTimeout?: Duration;
  /** Extra pg settings (ssl, timeouts, ...), merged into the pool config. */
  readonly pg?: pg.PoolConfig;
  /**
   * Told about connection trouble the backend recovers from by itself: a broken idle pooled
   * connection, a lost LISTEN connection and each failed reconnect; not an idle pooled session
   * the server ended under its idle_session_timeout (57P05), which is its policy, not trouble.
   * Default: ignored (failing queries still reject as usual).
   */
  readonly onConnectionError?: (error: Error) => void;
}

export interface ConnectionSettings {
  readonly schema: string;
  readonly migrate: boolean;
  readonly pollMs: number;
  readonly replyTimeoutMs: number;
  readonly pool: pg.PoolConfig;
  /** The pool's connections may be any server session from one transaction to the next. */
  readonly transactionPooler: boolean;
  /** The dedicated LISTEN client's settings; undefined when there is nowhere to LISTEN (poll only). */
  readonly listen: pg.ClientConfig | undefined;
}

const OWN_PARAMS = ["schema", "migrate", "pool", "poll", "replyTimeout", "pooler", "listenUrl"] as const;
/** Behind a transaction pooler with nowhere to LISTEN, polling is how another process's jobs are found. */
const POLL_ONLY_MS = 1_000;

/**
 * A peer that vanished without closing the connection (a host gone, a NAT or firewall that forgot
 * the flow, a failover that moved an address) sends neither a reply nor a reset: without a bound,
 * a statement on that connection waits for as long as TCP takes to give up (many minutes), and a
 * worker stops without a word. Longer than Redis's: a statement may wait on a row lock held by an
 * application's transaction.
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 30_000;

const INT8 = 20;
const JSON_OID = 114;
const JSONB_OID = 3802;

/**
 * bigint columns (epoch ms, ids, counts) as numbers: all stay below 2^53. json and jsonb as text:
 * rows.ts decodes them once, the same way for our pool and for a caller's driver.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === INT8) return (value: string) => Number(value);
    if (oid === JSON_OID || oid === JSONB_OID) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

function flag(value: string | null, name: string): boolean | undefined {
  if (value === null) return undefined;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off"].includes(value)) return false;
  throw new ConfigError(`?${name}= must be true or false, got ${JSON.stringify(value)}`);
}

function positiveInt(value: string | number | null | undefined, name: string): number | undefined {
  if (value === null || value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function connectionSettings(options: PostgresOptions): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch (error) {
    throw new ConfigError("not a valid postgres:// URL", { cause: error });
  }
  const params = parsed.searchParams;
  for (const name of params.keys()) {
    // pg reads the rest (sslmode, application_name, options…) and ignores what it does not know: a
    // misspelt ?shema=app used the default schema without a word.
    const guess = (OWN_PARAMS as readonly string[]).includes(name) ? undefined : nearMiss(name, OWN_PARAMS);
    if (guess) throw new ConfigError(`unknown URL parameter ${JSON.stringify(name)} (did you mean ${guess}?)`);
  }
  const schema = checkSchemaName(options.schema ?? params.get("schema") ?? DEFAULT_SCHEMA);
  const migrate = options.migrate ?? flag(params.get("migrate"), "migrate") ?? true;
  const poolSize = positiveInt(options.poolSize ?? params.get("pool"), "pool size") ?? 10;
  const pooler = poolerMode(options.pooler ?? params.get("pooler"));
  const listenUrl = options.listenUrl ?? params.get("listenUrl") ?? undefined;
  if (listenUrl !== undefined && !/^postgres(ql)?:\/\//i.test(listenUrl)) {
    throw new ConfigError(`listenUrl must be a postgres:// URL (URL-encoded inside ?listenUrl=), got ${JSON.stringify(withoutPassword(listenUrl))}`);
  }
  const transactionPooler = pooler === "transaction";
  const pollMs = positiveInt(options.pollMs ?? params.get("poll"), "poll") ?? (transactionPooler && listenUrl === undefined ? POLL_ONLY_MS : 5_000);
  const replyTimeoutMs = positiveMs(options.replyTimeout ?? params.get("replyTimeout") ?? DEFAULT_REPLY_TIMEOUT_MS, "replyTimeout");
  for (const name of OWN_PARAMS) params.delete(name);
  // pg lets a connection string's TLS parameters replace an `ssl` given beside it: with
  // ?sslmode=verify-full in the URL, pg: { ssl: { ca } } was dropped without a word, and the
  // certificate failed verification. Offload's options win over the URL's, pg's `ssl` too.
  const explicitSsl = options.pg?.ssl !== undefined;
  if (explicitSsl) for (const name of SSL_PARAMS) params.delete(name);
  const connectionString = parsed.toString();
  const timeouts = { query_timeout: replyTimeoutMs, connectionTimeoutMillis: replyTimeoutMs };
  const client: pg.ClientConfig = { connectionString, types, application_name: "offload", ...timeouts, ...options.pg };
  // pg-pool also reads connectionTimeoutMillis as the longest wait for a free connection, which
  // failed calls on a healthy but busy pool: the pool's connections apply it themselves instead.
  const { connectionTimeoutMillis, ...pooled } = client;
  const Client = connectingWithin(connectionTimeoutMillis);
  const pool: pg.PoolConfig = { ...pooled, Client, max: poolSize, allowExitOnIdle: true, ...options.pg };
  // A LISTEN through a transaction pooler lands on whichever session runs it, and that session's
  // notifications reach whichever client it serves next: the listener would wait in vain.
  const listen = listenUrl !== undefined ? { ...client, connectionString: listenConnectionString(listenUrl, params, explicitSsl) } : transactionPooler ? undefined : client;
  return { schema, migrate, pollMs, replyTimeoutMs, pool, transactionPooler, listen };
}

/** The URL parameters from which pg makes its TLS settings (pg-connection-string). */
const SSL_PARAMS = ["ssl", "sslmode", "sslrootcert", "sslcert", "sslkey", "uselibpqcompat"] as const;
/** The same, and how TLS is begun (sslnegotiation=direct): what a listenUrl may take from the URL. */
const TLS_PARAMS = [...SSL_PARAMS, "sslnegotiation"] as const;

/**
 * The LISTEN session's connection string: `listenUrl`, with the URL's TLS parameters when it has
 * none of its own. A listenUrl is the same database reached directly (the pooler's URL beside it
 * says sslmode=…), and one written without sslmode connected without TLS: to a server that takes
 * TLS only it was refused at every attempt, and workers found other processes' jobs only at the
 * safety poll (5 s later), the refusals reported nowhere but onConnectionError; to one that also
 * takes plain connections, the LISTEN session went unencrypted. With `ssl` in Offload's pg options,
 * as for the pool, that is what applies.
 */
function listenConnectionString(listenUrl: string, urlParams: URLSearchParams, explicitSsl: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(listenUrl);
  } catch {
    // A form pg reads but URL does not (postgres://user@/db?host=/socket): as given, as before.
    return listenUrl;
  }
  const params = parsed.searchParams;
  if (explicitSsl) {
    for (const name of SSL_PARAMS) params.delete(name);
  } else if (!TLS_PARAMS.some((name) => params.has(name))) {
    for (const name of TLS_PARAMS) {
      const value = urlParams.get(name);
      if (value !== null) params.set(name, value);
    }
  }
  return parsed.toString();
}

function poolerMode(value: string | null | undefined): "transaction" | "session" {
  if (value === null || value === undefined) return "session";
  if (value === "transaction" || value === "session") return value;
  throw new ConfigError(`pooler must be "transaction" or "session", got ${JSON.stringify(value)}`);
}

/** pg's Client, bounding the making of its connection by `ms`. */
function connectingWithin(ms: number | undefined): typeof pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(typeof config === "object" ? { connectionTimeoutMillis: ms, ...config } : config);
    }
  };
}


/**
 * May a failed statement be sent again? Yes when no verdict came (the connection ended, the reply
 * timed out, no connection could be made: pg's own errors carry no SQLSTATE, node's socket errors
 * an E… code) and when the server did not run it: class 08 and 57P01-57P03 (a restart, whose
 * statements are rolled back), 57P05 (a session the server closed while idle, handed out by the
 * pool before the closing message was read) and 25006 (a standby: a failover moved the primary).
 * No for every other error the server answered: the statement failed as sent, and would again;
 * and no for a connection refused as configured (refusedConnection: a certificate not trusted…).
 */
export function resendable(error: unknown): boolean {
  if (!(error instanceof Error) || refusedConnection(error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return true;
  // Node's socket errors (ECONNRESET, EPIPE, EAI_AGAIN…), not its ERR_* codes (a TLS certificate
  // refused, an invalid argument): those fail again the same way.
  return (/^E[A-Z]/.test(code) && !code.startsWith("ERR_")) || code.startsWith("08") || /^57P0[1235]$/.test(code) || code === "25006";
}

/**
 * Node's codes for a server certificate that did not pass verification (OpenSSL's verify errors;
 * a certificate for another host is ERR_TLS_CERT_ALTNAME_INVALID, matched with the ERR_TLS_ ones).
 */
const CERTIFICATE_REFUSED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE", "CERT_UNTRUSTED", "CERT_REJECTED", "CERT_REVOKED", "CERT_CHAIN_TOO_LONG",
  "INVALID_CA", "INVALID_PURPOSE", "PATH_LENGTH_EXCEEDED", "HOSTNAME_MISMATCH",
]);

/** pg's own error (no code) when sslmode asks for TLS and the server answers that it has none. */
const SERVER_WITHOUT_TLS = "The server does not support SSL connections";

/**
 * No connection can be made as configured, and making it again will not change that: the server's
 * certificate is not trusted (another CA, self-signed, expired, for another host), the TLS
 * handshake failed (a client certificate refused: ERR_SSL_…), TLS was asked of a server that has
 * none, or the server refused the login (class 28: pg_hba.conf, e.g. a server that takes TLS
 * connections only reached without it, or a wrong password). pg's error for a server without TLS
 * has no code, and was read as "no verdict": an enqueue was sent again for 8.8 s before it failed.
 * A configuration error, then: never sent again, and the app's calls fail at once with a
 * BackendUnavailableError naming the reason (unavailable() below), as a web route should answer
 * 503 while the queue's database cannot be used, whatever the reason; workers report it at each
 * attempt (not hidden), and go on trying, as they do for a server that is down, so that a fixed
 * certificate or pg_hba.conf needs no restart.
 */
export function refusedConnection(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return error.message === SERVER_WITHOUT_TLS;
  return CERTIFICATE_REFUSED.has(code) || /^ERR_(?:TLS|SSL)_/.test(code) || code.startsWith("28");
}

/** The server ended the session because it sat idle longer than its idle_session_timeout (57P05). */
export function endedWhileIdle(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === "57P05";
}

/**
 * The server ran out of something it may have again soon: class 53 (disk full, out of memory, too
 * many connections) or time (57014, a statement timeout; 55P03, a lock timeout). The statement did
 * not happen, and the adapter does not send it again at once (it would meet the same limit), but
 * the app may try later: its calls get a BackendUnavailableError (client/backend-errors.ts).
 * Not a statement rolled back by contention (rolledBack): one of Offload's own is sent again, and
 * the backend says which failed every resend (PostgresBackend.unavailable); in the app's own
 * transaction (enqueue with tx) it is the app's 40001 or 40P01, for it to run its transaction again.
 */
export function refusedForNow(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && (code.startsWith("53") || code === "57014" || code === "55P03");
}

/**
 * The statement's transaction was rolled back by a serialization failure (40001: the database's
 * default isolation is repeatable read or serializable) or chosen as a deadlock's victim (40P01):
 * nothing of it happened, and the same statement may well pass when sent again.
 */
export function rolledBack(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return code === "40001" || code === "40P01";
}

/** What a warning says of Offload's statement `statement` rolled back with `code` (and sent again). */
export function rollbackWarning(code: "40001" | "40P01", statement: string, schema: string): string {
  if (code === "40P01") {
    return `offload postgres: Offload's statement ${statement} was chosen as a deadlock's victim and sent again. ` +
      `Another transaction locking rows of schema "${schema}" (an operator's or the app's) causes this; ` +
      "between Offload's own statements it would be a bug of Offload's, to report.";
  }
  return `offload postgres: Offload's statement ${statement} was rolled back by a serialization failure (40001) and sent again: ` +
    "this role's default_transaction_isolation is stricter than read committed, and Offload's sessions could not set their own (behind a transaction pooler they cannot). " +
    "Give Offload's role read committed: ALTER ROLE <role> SET default_transaction_isolation = 'read committed' (docs/postgres.md).";
}

/**
 * The error to judge: `error`, or for a wrapper without a code of its own, the first error down
 * its `cause` chain that has one (else the last). An ORM's adapter for a transactional enqueue
 * wraps pg's error: Drizzle's DrizzleQueryError ("Failed query: …") carries no SQLSTATE, and was
 * read as "no verdict from the server", so a transaction that had failed (25P02) or a missing
 * table (42P01) reached the app as a BackendUnavailableError, to be tried again for ever. Prisma
 * has codes of its own and keeps pg's in its `meta` (prismaDriverError).
 */
export function judged(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 10; depth++) {
    if (!(current instanceof Error)) return current;
    const prisma = prismaDriverError(current);
    if (prisma) return prisma;
    if (typeof (current as { code?: unknown }).code === "string") return current;
    if (!(current.cause instanceof Error)) return current;
    current = current.cause;
  }
  return current;
}

/** Prisma's driver-adapter error kinds that mean the server gave no verdict. */
const PRISMA_NO_VERDICT = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout"]);

/**
 * pg's verdict inside an error of Prisma 7 (driver adapters), which has codes of its own: a raw
 * query that failed is `P2010` with the SQLSTATE in `meta.driverAdapterError.cause.originalCode`;
 * a server that could not be reached is `P1001` with only a `kind` there. Returned as an error
 * with the SQLSTATE as its code (none when the server gave no verdict, as pg's own errors), with
 * Prisma's as its cause; undefined for any other error.
 */
function prismaDriverError(error: Error): Error | undefined {
  const meta: unknown = (error as { meta?: unknown }).meta;
  if (typeof meta !== "object" || meta === null) return undefined;
  const adapter: unknown = (meta as { driverAdapterError?: unknown }).driverAdapterError;
  const cause: unknown = typeof adapter === "object" && adapter !== null ? (adapter as { cause?: unknown }).cause : undefined;
  if (typeof cause !== "object" || cause === null) return undefined;
  const { originalCode, kind } = cause as { originalCode?: unknown; kind?: unknown };
  if (typeof originalCode === "string") return Object.assign(new Error(error.message, { cause: error }), { code: originalCode });
  if (kind === "TooManyConnections") return Object.assign(new Error(error.message, { cause: error }), { code: "53300" });
  if (typeof kind === "string" && PRISMA_NO_VERDICT.has(kind)) return new Error(error.message, { cause: error });
  return undefined;
}

/**
 * Whether the server could not be reached, did not answer, could not take the call now, or
 * cannot be connected to as configured (Backend.unavailable): resendable(), refusedForNow() or
 * refusedConnection(). resendable() takes every error without a
 * SQLSTATE for pg's own ("Connection terminated"): a fault in code (a TypeError, a RangeError)
 * is not one of those.
 */
export function unavailable(error: unknown): boolean {
  const driver = judged(error);
  return !(driver instanceof TypeError || driver instanceof RangeError) && (resendable(driver) || refusedForNow(driver) || refusedConnection(driver));
}
