// Builds the `ctx` a handler receives. Progress and log writes are fenced by the lease token and
// tracked, so the job's outcome is recorded only after its own writes landed.
import type { AckRetry } from "./ack-retry.ts";
import type { Backend } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import type { ClaimedJob } from "../core/job.ts";
import type { JobContext } from "../client/task.ts";
import { jobArtifacts } from "../artifacts/store.ts";
import { LocalFolderStore } from "../artifacts/local-folder-store.ts";
import { ProgressWriter } from "./progress-writer.ts";
import { ConfigError, OffloadError } from "../core/errors.ts";
import { describe } from "../core/names.ts";

// The default store for workers built without an Offload instance; Offload binds its own.
let defaultStore: LocalFolderStore | undefined;
const defaultArtifactStore = (): LocalFolderStore => (defaultStore ??= new LocalFolderStore());

/** A progress message is a status line; a log line is a line. Longer ones are cut, and say so. */
export const MAX_PROGRESS_MESSAGE = 1_000;
export const MAX_LOG_LINE = 64 * 1024;

function capped(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = ` … (cut: ${text.length.toLocaleString("en-US")} characters)`;
  // Not in the middle of a surrogate pair: half an emoji is not storable text.
  let end = max - note.length;
  if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
  return text.slice(0, end) + note;
}

export function makeJobContext(
  backend: Backend,
  claimed: ClaimedJob,
  signal: AbortSignal,
  deps: {
    readonly clock: Clock;
    readonly writes: Set<Promise<unknown>>;
    readonly report: (error: unknown) => void;
    /** Sends a failed write again (ack-retry.ts); without it, a write is tried once. */
    readonly retry?: AckRetry;
  },
): JobContext {
  const { job, token } = claimed;
  const track = <T>(write: Promise<T>): Promise<T> => {
    deps.writes.add(write);
    return write.finally(() => deps.writes.delete(write));
  };
  // Made at the first report: most jobs report none, and this runs for every job claimed.
  // A failed progress write is reported once, as a failed log line is (collapsed calls share it).
  let progressWriter: ProgressWriter | undefined;
  let logs: Promise<unknown> = Promise.resolve(); // the last log line's write: the next waits for it
  // Sent again when the write fails, as log lines and outcomes are: a handler awaits its progress
  // (`await ctx.progress(0.3)` between steps), and a connection blip that rejected the call failed
  // the attempt, which ran again (found by a PostgreSQL chaos soak). Progress is a gauge, so a
  // write that landed before its reply was lost is harmless sent again: the run keeps its newest.
  const writeProgress = async (progress: number, message: string | undefined): Promise<unknown> => {
    const request = { id: job.id, token, progress, message, now: deps.clock.now() };
    const write = (): Promise<unknown> => backend.progress(request);
    const retry = deps.retry;
    try {
      return await (retry ? retry.write(write, (error) => error instanceof OffloadError) : write());
    } catch (error) {
      deps.report(error);
      throw error;
    }
  };
  return {
    signal,
    attempt: job.attempt,
    job,
    progress: (fraction, message) => {
      // A mistake in the handler's own code (a string fraction was recorded as 0, an object
      // message failed in the driver): rejected, and reported, as a failed write is. Not thrown:
      // progress is often reported from a timer or a stream callback, where a throw would end
      // the process.
      // Out of range is a mistake too: ctx.progress(50), a percentage as BullMQ's updateProgress
      // takes it, was stored as 1 (done) at the first report, and NaN as 0, without a word. A
      // fraction summed in steps may pass 1 by a rounding error: that much is kept, as 1.
      const mistake = fraction !== undefined && typeof fraction !== "number"
        ? `ctx.progress(fraction): a number from 0 to 1, got ${describe(fraction)}`
        : typeof fraction === "number" && !(fraction >= 0 && fraction <= 1 + 1e-9)
        ? `ctx.progress(fraction): a number from 0 to 1, got ${fraction}${fraction > 1 && fraction <= 100 ? ` (a fraction: ${fraction}% is ${fraction / 100})` : ""}`
        : message != null && typeof message !== "string" ? `ctx.progress(fraction, message): message must be a string, got ${describe(message)}` : undefined;
      if (mistake !== undefined) {
        const error = new ConfigError(mistake);
        deps.report(error);
        const refused = Promise.reject(error);
        refused.catch(() => {});
        return refused;
      }
      const progress = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      message = message == null ? undefined : capped(message, MAX_PROGRESS_MESSAGE);
      progressWriter ??= new ProgressWriter(writeProgress);
      const written = track(progressWriter.report(progress, message));
      // A caller that awaits still gets the rejection. One that does not (a loop reporting every
      // row, as latest-wins invites) must not get an unhandled rejection, which ends the process
      // and every job running in it over one failed write; the failure was reported above.
      written.catch(() => {});
      return written;
    },
    log: (line) => {
      // Sent again when the write fails (a connection blip), as acknowledgements are: the line was
      // lost while the job's completion, retried, went through. A reply lost after the line was
      // written makes it appear twice: a duplicate line is the lesser harm. Lines go one after
      // another, so one sent again never lands after a later one; a refusal (an Offload error,
      // e.g. a server too old) is not sent again.
      const entry = { id: job.id, token, line: capped(String(line), MAX_LOG_LINE), now: deps.clock.now() };
      const write = (): Promise<unknown> => backend.log(entry);
      const retry = deps.retry;
      logs = logs.then(() => (retry ? retry.write(write, (error) => error instanceof OffloadError) : write()));
      track(logs).catch(deps.report);
      logs = logs.catch(() => {}); // the next line goes regardless
    },
    artifacts: jobArtifacts(defaultArtifactStore, job.id),
  };
}
