// Change signals for watch(): a dedicated connection LISTENs on the schema's channel, on which
// every writing statement NOTIFYs (delivered at commit), from any process. When that connection
// drops (server restart, network), it reconnects with backoff and then announces once, since
// notifications sent while it was away are lost. A slow safety poll announces regardless, so a
// missed notification costs at most one poll interval. Writes by this process are also announced
// directly, before the notification comes back. A LISTEN connection only receives, so one that
// died without closing (a vanished host) would go unnoticed: each poll also asks it a trivial
// query, and one unanswered within the reply timeout (the client's query_timeout) drops it. A
// connection on a server that takes no writes is kept only until one on a server that does is
// found (READ_ONLY below).
// Without a place to LISTEN (behind a transaction pooler with no listenUrl), the poll is all there
// is: watchers hear this process's writes at once and other processes' at the next poll.
import { ChangeListeners, readChangeMessage } from "../change-listeners.ts";
import pg from "pg";
import { quoteIdent } from "./queries.ts";

const MIN_BACKOFF_MS = 50;

/**
 * A LISTEN session is idle by design, so a server's idle_session_timeout (PostgreSQL 14+, set by
 * some providers and DBAs to reclaim forgotten sessions) ended it every time it elapsed: it was
 * made again, each time reported as lost, and each time announced a change, which sent every
 * idle worker of the process to claim for nothing (and notifications sent in the gap were
 * lost). This one session per process opts out; pooled sessions keep the server's setting. Read
 * from pg_settings, so that a server without the setting (13) skips it instead of failing.
 */
const KEEP_WHILE_IDLE = "SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'";
const MAX_BACKOFF_MS = 2_000;

/**
 * A LISTEN hears only the server it runs on, and notifications come from where jobs are written. A
 * server that takes no writes (default_transaction_read_only: a primary fenced or demoted in place
 * after a failover) still takes LISTEN, and answers the probe: when the name the app connects to
 * had moved to the new primary while the old one stayed up, the LISTEN stayed on the old one for
 * as long as it lived, and jobs other processes enqueued on the new one woke no one (workers found
 * them at their poll, watchers at the safety poll: test/backends/postgres-failover.postgres.test.ts
 * waited 20 s in vain for the LISTEN to reach the new primary). So a session on a read-only server
 * is kept (in a maintenance freeze set by ALTER DATABASE, sessions made before it still write and
 * notify there), but a session on a server that takes writes is looked for (backoff, at most 2 s
 * apart) and, once found, replaces it. A server in recovery refuses LISTEN itself (25006): that
 * is a failed connect, retried like every failed connect.
 */
const READ_ONLY = "the LISTEN connection's server takes no writes (read only: a fenced or demoted primary); kept, while a connection to a server that takes writes is looked for";

/** Whether `client`'s server refuses writes to its new transactions (each statement is one here). */
async function takesNoWrites(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ read_only: string }>("SELECT current_setting('transaction_read_only') AS read_only");
  return rows[0]?.read_only === "on";
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class Listener {
  readonly #listeners = new ChangeListeners();
  /** undefined: poll only. */
  readonly #config: pg.ClientConfig | undefined;
  readonly #channel: string;
  readonly #pollMs: number;
  #client: pg.Client | undefined;
  /** Asks the LISTEN connection whether it is alive; drops it when it does not answer. */
  #probe: (() => void) | undefined;
  #poll: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = MIN_BACKOFF_MS;
  #started = false;
  #closed = false;
  #onError: (error: Error) => void;

  readonly #origin: string;

  /** Notifications from `origin` are this process's own writes, already announced: skipped. */
  constructor(config: pg.ClientConfig | undefined, channel: string, pollMs: number, onError: (error: Error) => void, origin = "") {
    this.#origin = origin;
    this.#config = config;
    this.#channel = channel;
    this.#pollMs = pollMs;
    this.#onError = onError;
  }

  /** The connection is opened on the first subscription and kept until close(). */
  subscribe(listener: () => void, newWorkOnly = false): () => void {
    const remove = this.#listeners.add(listener, newWorkOnly);
    this.#start();
    return remove;
  }

  /** Calls every listener once, soon (coalesced per macrotask); see ChangeListeners for `newWork`. */
  announce(newWork = true): void {
    this.#listeners.announce(newWork);
  }


  /** Resolves once the LISTEN is in place: from then on no change from another process is missed. */
  ready(): Promise<void> {
    if (!this.#started) this.#start();
    return this.#listening.promise;
  }

  #listening = deferred();
  #isListening = false;

  async close(): Promise<void> {
    this.#closed = true;
    this.#listening.resolve(); // nobody waits forever on a closed listener
    this.#listeners.clear();
    if (this.#poll) clearInterval(this.#poll);
    if (this.#retry) clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  #start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#poll = setInterval(() => {
      this.announce();
      this.#probe?.();
    }, this.#pollMs);
    this.#poll.unref();
    if (this.#config) {
      void this.#connect(this.#config);
    } else {
      // Nothing to wait for: every change of another process is found by the poll.
      this.#isListening = true;
      this.#listening.resolve();
    }
  }

  async #connect(config: pg.ClientConfig): Promise<void> {
    this.#retry = undefined;
    if (this.#closed) return;
    // With a session in place, this attempt only looks for a server that takes writes, to move
    // the LISTEN there (see READ_ONLY): whatever it meets, the session in place stays until then.
    const looking = this.#client !== undefined;
    const client = new pg.Client(config);
    let lost = false;
    const onLost = (error?: Error): void => {
      if (lost) return;
      lost = true;
      client.end().catch(() => {});
      if (this.#closed) return;
      if (this.#client !== client && (looking || this.#client !== undefined)) {
        // Not the session in place but a look for a writable server, which looks again while a
        // session is in place (if that one died meanwhile, its own reconnect is due), or an attempt
        // that another one beat.
        if (looking && this.#client !== undefined) this.#lookAgain(config);
        return;
      }
      if (this.#isListening) this.#listening = deferred();
      this.#isListening = false;
      if (this.#client === client) {
        this.#client = undefined;
        this.#probe = undefined;
        this.#retire = undefined;
        this.#seeking = false;
      }
      if (error) this.#onError(error);
      this.#schedule(config);
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", (message) => {
      const change = readChangeMessage(message.payload ?? "", this.#origin);
      if (change) this.announce(change.newWork);
    });
    let readOnly: boolean;
    try {
      await client.connect();
      await client.query(KEEP_WHILE_IDLE);
      readOnly = await takesNoWrites(client);
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
    } catch (error) {
      onLost(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (this.#closed || lost) {
      lost = true;
      await client.end().catch(() => {});
      return;
    }
    if (this.#client !== undefined && this.#client !== client) {
      // A session is in place: this was a look for a writable server, or a reconnect that another
      // attempt beat. Only a session on a writable server replaces one that is in place.
      if (!looking || readOnly) {
        lost = true;
        await client.end().catch(() => {});
        if (looking) this.#lookAgain(config);
        return;
      }
      this.#retire?.(); // the read-only server's session: nothing it hears is worth keeping it for
      this.#seeking = false;
    }
    this.#client = client;
    this.#retire = () => {
      lost = true;
      client.end().catch(() => {});
    };
    let probing = false;
    this.#probe = () => {
      if (probing) return;
      probing = true;
      takesNoWrites(client).then(
        (nowReadOnly) => {
          probing = false;
          // Fenced since the LISTEN (a primary demoted in place): look for the server that took over.
          if (nowReadOnly && this.#client === client && !this.#seeking) this.#readOnly(config);
        },
        (error: unknown) => onLost(new Error(`the LISTEN connection did not answer (${error instanceof Error ? error.message : String(error)}); connecting again`)),
      );
    };
    this.#isListening = true;
    this.#listening.resolve();
    if (readOnly) {
      this.#readOnly(config);
    } else {
      this.#backoffMs = MIN_BACKOFF_MS;
    }
    this.announce(); // anything that changed while we were not listening
  }

  /** Ends the LISTEN session in place without reconnecting: a better one replaced it. */
  #retire: (() => void) | undefined;

  /** A server that takes writes is being looked for, the session in place being on a read-only one. */
  #seeking = false;

  /** The session in place is on a read-only server: said once, then a writable one is looked for. */
  #readOnly(config: pg.ClientConfig): void {
    this.#seeking = true;
    this.#onError(new Error(READ_ONLY));
    this.#backoffMs = MIN_BACKOFF_MS;
    this.#lookAgain(config);
  }

  #lookAgain(config: pg.ClientConfig): void {
    if (this.#closed || !this.#seeking) return;
    this.#schedule(config);
  }

  /**
   * The next connection attempt, after the back-off, in place of one still pending: one chain of
   * attempts at a time. (A read-only session that died while a look was connecting scheduled its
   * reconnect; the look then became the session, read-only too, and scheduled its own look: two
   * chains doubled the attempts, and close() cleared only the newer timer.)
   */
  #schedule(config: pg.ClientConfig): void {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#connect(config), this.#backoffMs);
    this.#retry.unref();
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2);
  }
}
