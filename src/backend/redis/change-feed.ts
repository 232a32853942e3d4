// Tells listeners that jobs may have changed. Writes from this backend instance are announced
// directly; writes from other processes arrive on a pub/sub channel under the prefix (every
// script that changes something PUBLISHes its origin; we skip our own messages). After every
// (re)connection the channel is subscribed again and listeners are told to look again, because
// messages published while the connection was down are lost.
import { ChangeListeners } from "../change-listeners.ts";
import type { Cluster, Redis } from "ioredis";
import { closeClient } from "./connection.ts";

export class ChangeFeed {
  readonly #listeners = new ChangeListeners();
  readonly #makeSubscriber: () => Redis | Cluster;
  readonly #channel: string;
  readonly #origin: string;
  readonly #report: (error: unknown) => void;
  #subscriber: Redis | Cluster | undefined;
  #closed = false;

  constructor(options: { subscriber: () => Redis | Cluster; channel: string; origin: string; report: (error: unknown) => void }) {
    this.#makeSubscriber = options.subscriber;
    this.#channel = options.channel;
    this.#origin = options.origin;
    this.#report = options.report;
  }

  subscribe(listener: () => void): () => void {
    const remove = this.#listeners.add(listener);
    if (!this.#subscriber && !this.#closed) this.#start();
    return remove;
  }

  /** Announce a change (coalesced into one call per macrotask). */
  announce(): void {
    this.#listeners.announce();
  }


  async close(): Promise<void> {
    this.#closed = true;
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
    subscriber.on("message", (_channel: string, origin: string) => {
      if (origin !== this.#origin) this.announce();
    });
    subscriber.on("ready", () => {
      subscriber.subscribe(this.#channel).then(() => this.announce(), (error: unknown) => {
        if (!this.#closed) this.#report(error);
      });
    });
    subscriber.on("error", (error: unknown) => {
      if (!this.#closed) this.#report(error);
    });
  }
}
