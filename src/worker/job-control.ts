// One running job's abort switch. Aborting records why (the executor reads the reason to pick the
// outcome) and arms the hard stop through a plain callback: no event listener per job on the
// claim-run-acknowledge hot path.
import type { AbortReason } from "./abort-reasons.ts";

export class JobControl {
  readonly controller = new AbortController();
  #onAbort: (() => void) | undefined;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  abort(reason: AbortReason): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort(reason);
    const onAbort = this.#onAbort;
    this.#onAbort = undefined;
    onAbort?.();
  }

  /** Runs `callback` once the job is aborted (at once, if it already is). */
  onAbort(callback: () => void): void {
    if (this.controller.signal.aborted) callback();
    else this.#onAbort = callback;
  }
}
