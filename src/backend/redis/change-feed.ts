// Tells listeners that jobs may have changed. Writes from this backend instance are announced
// directly; writes from other processes arrive on a pub/sub channel under the prefix (every
// script that changes something PUBLISHes its origin; we skip our own messages). After every
// (re)connection the channel is subscribed again and listeners are told to look again, because
// messages published while the connection was down are lost. A subscribed connection only
// receives, so a dead one would go unnoticed: it is pinged, and made again when the ping goes
// unanswered.
import { ChangeListeners, readChangeMessage } from "../change-listeners.ts";
import { Cluster, type Redis } from "ioredis";
import { closeClient } from "./connection.ts";

/** How often an idle subscriber connection is checked (or each reply timeout, if shorter). */
const PING_EVERY_MS = 5_000;

export class ChangeFeed {
  readonly #listeners = new ChangeListeners();
  readonly #makeSubscriber: () => Redis | Cluster;
  readonly #channel: string;
  readonly #origin: string;
  readonly #report: (error: unknown) => void;
  readonly #replyTimeoutMs: number;
  #subscriber: Redis | Cluster | undefined;
  #pinger: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: { subscriber: () => Redis | Cluster; channel: string; origin: string; replyTimeoutMs: number; report: (error: unknown) => void }) {
    this.#makeSubscriber = options.subscriber;
    this.#channel = options.channel;
    this.#origin = options.origin;
    this.#replyTimeoutMs = options.replyTimeoutMs;
    this.#report = options.report;
  }

  subscribe(listener: () => void, newWorkOnly = false): () => void {
    const remove = this.#listeners.add(listener, newWorkOnly);
    if (!this.#subscriber && !this.#closed) this.#start();
    return remove;
  }

  /** Announce a change (coalesced into one call per macrotask); see ChangeListeners for `newWork`. */
  announce(newWork = true): void {
    this.#listeners.announce(newWork);
  }


  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pinger);
    this.#listeners.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await closeClient(subscriber);
  }

  #start(): void {
    // The subscriber is kept for the life of the backend: waiters come and go (job.result()),
    // and subscribing again for each would cost a round trip and open a window for lost signals.
    const subscriber = this.#makeSubscriber();
    this.#subscriber = subscriber;
    subscriber.on("message", (_channel: string, message: string) => {
      const change = readChangeMessage(message, this.#origin); // published by lib.lua's flush
      if (change) this.announce(change.newWork);
    });
    subscriber.on("ready", () => {
      subscriber.subscribe(this.#channel).then(() => this.announce(), (error: unknown) => {
        if (!this.#closed) this.#report(error);
      });
    });
    subscriber.on("error", (error: unknown) => {
      if (!this.#closed) this.#report(error);
    });
    this.#pinger = setInterval(() => this.#ping(subscriber), Math.min(PING_EVERY_MS, this.#replyTimeoutMs));
    this.#pinger.unref(); // the feed must not keep a process alive
  }

  /** A ping unanswered within the reply timeout means the connection is dead: drop it and connect again. */
  #ping(subscriber: Redis | Cluster): void {
    if (subscriber.status !== "ready") return;
    let answered = false;
    // A Cluster sends PING over a command connection, not the one holding the subscription;
    // subscribing again to the channel (a no-op for the server) goes over that one.
    const probe = subscriber instanceof Cluster ? subscriber.subscribe(this.#channel) : subscriber.ping();
    probe.then(() => (answered = true), () => (answered = true));
    const check = setTimeout(() => {
      if (answered || this.#closed || subscriber.status !== "ready") return;
      this.#report(new Error(`redis subscriber connection did not answer a ping within ${this.#replyTimeoutMs} ms; connecting again`));
      subscriber.disconnect(true); // "ready" follows the reconnect: subscribe again, and tell listeners to look again
    }, this.#replyTimeoutMs);
    check.unref();
  }
}
