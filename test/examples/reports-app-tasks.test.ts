// The demo's report task streams its PDF into the artifact store while it renders. A report that
// is cancelled half-way must end that stream: else the store waits on it for good and leaves its
// temporary file behind in the job's folder.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { systemClock } from "../../src/core/clock.ts";
import { Wakeup } from "../../src/core/wakeup.ts";
import { nextEvent } from "../../src/testing/index.ts";

// config.ts reads REPORTS_APP_DATA when it is first imported: set it before that.
const data = mkdtempSync(join(tmpdir(), "reports-app-tasks-"));
process.env["REPORTS_APP_DATA"] = data;
const { artifactsDir, ensureDataDirs } = await import("../../examples/reports-app/config.ts");
const { offload, renderReport } = await import("../../examples/reports-app/tasks.ts");
ensureDataDirs();

/** The files in one job's artifact folder, hidden temporary ones included. */
const filesOf = (jobId: string): string[] => {
  const folder = join(artifactsDir, jobId);
  return existsSync(folder) ? readdirSync(folder).sort() : [];
};

/** Resolves once the job's event feed holds a progress event, woken by the backend's change signal. */
async function progressReported(jobId: string): Promise<void> {
  const wakeup = new Wakeup();
  const unwatch = await offload.jobs.watch(() => wakeup.notify());
  try {
    while (!(await offload.jobs.events({ jobId, afterId: 0 })).some((e) => e.type === "progress")) {
      await wakeup.wait(1_000, systemClock); // a look now and then as well, should a signal be missed
    }
  } finally {
    unwatch();
  }
}

after(async () => {
  await offload.close();
  rmSync(data, { recursive: true, force: true });
});

describe("examples/reports-app: the report task", () => {
  it("stores report.pdf and nothing else when it succeeds", async () => {
    const worker = offload.worker({ queues: ["reports"] });
    try {
      const succeeded = nextEvent(worker, "succeeded");
      await worker.start();
      const job = await renderReport.enqueue({ title: "Whole" });
      await succeeded;
      assert.deepEqual(filesOf(job.id), ["report.pdf"]);
    } finally {
      await worker.stop();
    }
  });

  it("leaves no temporary file when it is cancelled while rendering", async () => {
    const worker = offload.worker({ queues: ["reports"] });
    try {
      const started = nextEvent(worker, "started");
      const cancelled = nextEvent(worker, "cancelled");
      await worker.start();
      const job = await renderReport.enqueue({ title: "Cut short" });
      await started;
      // Cancel mid-render, once the PDF is streaming into its temporary file: before that there
      // would be nothing to leave behind, and the check below could not fail.
      await progressReported(job.id);
      assert.ok(filesOf(job.id).some((f) => f.startsWith(".report.pdf.") && f.endsWith(".tmp")), `a temporary file while rendering, got ${filesOf(job.id).join(", ")}`);
      await job.cancel();
      await cancelled;
      assert.equal(await job.state(), "cancelled");
      assert.deepEqual(filesOf(job.id), []);
    } finally {
      await worker.stop();
    }
  });
});
