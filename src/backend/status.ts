// The one place where backend status codes become typed errors.
import { InvalidStateError, JobNotFoundError } from "../core/errors.ts";
import type { CancelStatus, RetryStatus } from "./backend.ts";

export function assertCancelled(id: string, status: CancelStatus): void {
  if (status === "NOT_FOUND") throw new JobNotFoundError(id);
  // ALREADY_FINISHED is not an error: cancelling is idempotent from the caller's point of view.
}

export function assertRetried(id: string, status: RetryStatus): void {
  switch (status) {
    case "QUEUED":
      return;
    case "NOT_FOUND":
      throw new JobNotFoundError(id);
    case "NOT_FINISHED":
      throw new InvalidStateError(id, "not failed or cancelled", "retry");
    case "KEY_IN_USE":
      throw new InvalidStateError(id, "holding an idempotency key another unfinished job now has", "retry");
  }
}
