// Why a running job's signal was aborted. The executor reads the reason to decide the outcome:
// a cancel ends the job `cancelled`, a timeout is a failed attempt, a lost lease or a shutdown
// means this worker must record nothing.
import { TaskTimeoutError } from "../core/errors.ts";

export class CancelRequested extends Error {
  constructor() {
    super("job was cancelled");
    this.name = "CancelRequested";
  }
}

export class LeaseLost extends Error {
  constructor() {
    super("lease was lost: another worker may run this job");
    this.name = "LeaseLost";
  }
}

export class ShuttingDown extends Error {
  constructor() {
    super("worker is shutting down: job handed back to the queue");
    this.name = "ShuttingDown";
  }
}

export type AbortReason = CancelRequested | LeaseLost | ShuttingDown | TaskTimeoutError;
