// Change signals for watch(): a dedicated connection LISTENs on the schema's channel, on which
// every writing statement NOTIFYs (delivered at commit), from any process. When that connection
// drops (server restart, network), it reconnects with backoff and then announces once, since
// notifications sent while it was away are lost. A slow safety poll announces regardless, so a
// missed notification costs at most one poll interval. Writes by this process are also announced
// directly, before the notification comes back. A LISTEN connection only receives, so one that
// died without closing (a vanished host) would go unnoticed: each poll also asks it a trivial
// query, and one unanswered within the reply timeout (the client's query_timeout) drops it.
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
    const client = new pg.Client(config);
    let lost = false;
    const onLost = (error?: Error): void => {
      if (lost) return;
      lost = true;
      if (this.#isListening) this.#listening = deferred();
      this.#isListening = false;
      if (this.#client === client) {
        this.#client = undefined;
        this.#probe = undefined;
      }
      client.end().catch(() => {});
      if (this.#closed) return;
      if (error) this.#onError(error);
      this.#retry = setTimeout(() => void this.#connect(config), this.#backoffMs);
      this.#retry.unref();
      this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2);
    };
    client.on("error", onLost);
    client.on("end", () => onLost());
    client.on("notification", (message) => {
      const change = readChangeMessage(message.payload ?? "", this.#origin);
      if (change) this.announce(change.newWork);
    });
    try {
      await client.connect();
      await client.query(KEEP_WHILE_IDLE);
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
    } catch (error) {
      onLost(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    let probing = false;
    this.#probe = () => {
      if (probing) return;
      probing = true;
      client.query("SELECT 1").then(
        () => (probing = false),
        (error: unknown) => onLost(new Error(`the LISTEN connection did not answer (${error instanceof Error ? error.message : String(error)}); connecting again`)),
      );
    };
    this.#isListening = true;
    this.#listening.resolve();
    this.#backoffMs = MIN_BACKOFF_MS;
    this.announce(); // anything that changed while we were not listening
  }
}
