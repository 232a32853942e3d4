// Progress is a gauge: only its latest value matters. A handler that reports faster than the
// backend can write (a loop that does not await each call) would otherwise put one write and one
// event per call on the backend, and as many rows or hash fields in the job's event history. Here
// at most one progress write per job is in flight; calls made meanwhile collapse into the newest
// one, which is sent when the write in flight lands. A handler that awaits each call gets each
// value written, in order. BullMQ and Celery write every call; a browser following the job sees
// the same bar either way.

export type WriteProgress = (fraction: number, message: string | undefined) => Promise<unknown>;

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Pending {
  fraction: number;
  message: string | undefined;
  readonly waiters: Waiter[];
}

export class ProgressWriter {
  readonly #write: WriteProgress;
  #writing = false;
  #next: Pending | undefined;

  constructor(write: WriteProgress) {
    this.#write = write;
  }

  /** Resolves when this value, or a newer one that replaced it, has been written. */
  report(fraction: number, message: string | undefined): Promise<void> {
    if (!this.#writing) return this.#send(fraction, message);
    return new Promise<void>((resolve, reject) => {
      if (this.#next) {
        this.#next.fraction = fraction;
        this.#next.message = message;
        this.#next.waiters.push({ resolve, reject });
      } else {
        this.#next = { fraction, message, waiters: [{ resolve, reject }] };
      }
    });
  }

  #send(fraction: number, message: string | undefined): Promise<void> {
    this.#writing = true;
    // A write that throws instead of returning a rejected promise (an adapter's method that is not
    // async) must still settle: otherwise `#writing` stays set, every later report queues behind it
    // for ever, and the worker waits for them before recording the outcome. The write still starts now.
    const written = new Promise<unknown>((resolve) => resolve(this.#write(fraction, message))).then(() => undefined);
    const sendNext = (): void => {
      this.#writing = false;
      const next = this.#next;
      if (!next) return;
      this.#next = undefined;
      this.#send(next.fraction, next.message).then(
        () => next.waiters.forEach((w) => w.resolve()),
        (error: unknown) => next.waiters.forEach((w) => w.reject(error)),
      );
    };
    written.then(sendNext, sendNext);
    return written;
  }
}
