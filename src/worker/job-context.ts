// Builds the `ctx` a handler receives. Progress and log writes are fenced by the lease token and
// tracked, so the job's outcome is recorded only after its own writes landed.
import type { Backend } from "../backend/backend.ts";
import type { Clock } from "../core/clock.ts";
import type { ClaimedJob } from "../core/job.ts";
import type { JobContext } from "../client/task.ts";
import { jobArtifacts } from "../artifacts/store.ts";
import { LocalFolderStore } from "../artifacts/local-folder-store.ts";
import { ProgressWriter } from "./progress-writer.ts";

// The default store for workers built without an Offload instance; Offload binds its own.
let defaultStore: LocalFolderStore | undefined;
const defaultArtifactStore = (): LocalFolderStore => (defaultStore ??= new LocalFolderStore());

export function makeJobContext(
  backend: Backend,
  claimed: ClaimedJob,
  signal: AbortSignal,
  deps: { readonly clock: Clock; readonly writes: Set<Promise<unknown>>; readonly report: (error: unknown) => void },
): JobContext {
  const { job, token } = claimed;
  const track = <T>(write: Promise<T>): Promise<T> => {
    deps.writes.add(write);
    return write.finally(() => deps.writes.delete(write));
  };
  // Made at the first report: most jobs report none, and this runs for every job claimed.
  // A failed progress write is reported once, as a failed log line is (collapsed calls share it).
  let progressWriter: ProgressWriter | undefined;
  const writeProgress = async (progress: number, message: string | undefined): Promise<unknown> => {
    try {
      return await backend.progress({ id: job.id, token, progress, message, now: deps.clock.now() });
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
      const progress = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      progressWriter ??= new ProgressWriter(writeProgress);
      const written = track(progressWriter.report(progress, message));
      // A caller that awaits still gets the rejection. One that does not (a loop reporting every
      // row, as latest-wins invites) must not get an unhandled rejection, which ends the process
      // and every job running in it over one failed write; the failure was reported above.
      written.catch(() => {});
      return written;
    },
    log: (line) => {
      track(backend.log({ id: job.id, token, line: String(line), now: deps.clock.now() })).catch(deps.report);
    },
    artifacts: jobArtifacts(defaultArtifactStore, job.id),
  };
}
