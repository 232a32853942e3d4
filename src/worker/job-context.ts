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
  const progressWriter = new ProgressWriter((progress, message) => backend.progress({ id: job.id, token, progress, message, now: deps.clock.now() }));
  return {
    signal,
    attempt: job.attempt,
    job,
    progress: async (fraction, message) => {
      const progress = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
      await track(progressWriter.report(progress, message));
    },
    log: (line) => {
      track(backend.log({ id: job.id, token, line: String(line), now: deps.clock.now() })).catch(deps.report);
    },
    artifacts: jobArtifacts(defaultArtifactStore, job.id),
  };
}
