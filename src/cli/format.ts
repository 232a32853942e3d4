// Plain-text rendering for the CLI: aligned tables, relative ages, one job in detail.
import type { JobRecord } from "../core/job.ts";
import type { JobEvent, QueueCounts } from "../backend/backend.ts";
import { JOB_STATES } from "../core/job.ts";

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86_400)}d`;
}

export function time(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString();
}

export function jobsTable(jobs: readonly JobRecord[]): string {
  return table(
    ["ID", "TASK", "QUEUE", "STATE", "ATTEMPT", "CREATED"],
    jobs.map((j) => [j.id, j.task, j.queue, j.state, `${j.attempt}/${j.maxAttempts}`, time(j.createdAt)]),
  );
}

export function queuesTable(counts: readonly QueueCounts[], now: number): string {
  return table(
    ["QUEUE", ...JOB_STATES.map((s) => s.toUpperCase()), "OLDEST QUEUED"],
    counts.map((c) => [c.queue, ...JOB_STATES.map((s) => String(c.counts[s])), c.oldestQueuedAt === undefined ? "-" : age(now - c.oldestQueuedAt)]),
  );
}

export function jobDetail(job: JobRecord): string {
  const lines = [
    `id:        ${job.id}`,
    `task:      ${job.task}`,
    `queue:     ${job.queue}`,
    `state:     ${job.state}${job.cancelRequested ? " (cancel requested)" : ""}`,
    `attempt:   ${job.attempt} of ${job.maxAttempts}`,
    `priority:  ${job.priority}`,
    `run at:    ${time(job.runAt)}`,
    `created:   ${time(job.createdAt)}`,
    `started:   ${time(job.startedAt)}`,
    `finished:  ${time(job.finishedAt)}`,
  ];
  // When retention prunes it: a failed job left alone is gone after 30 days, and --json said so, the text did not.
  if (job.expiresAt !== undefined) lines.push(`expires:   ${time(job.expiresAt)}`);
  if (job.key) lines.push(`key:       ${job.key}`);
  if (job.worker) lines.push(`worker:    ${job.worker}`);
  if (job.progress !== undefined) lines.push(`progress:  ${Math.round(job.progress * 100)}%${job.progressMessage ? ` ${job.progressMessage}` : ""}`);
  lines.push(`payload:   ${JSON.stringify(job.payload)}`);
  if (job.state === "succeeded") lines.push(`result:    ${JSON.stringify(job.result)}`);
  for (const e of job.errors) {
    lines.push(`error (attempt ${e.attempt}, ${time(e.at)}, ${e.worker ?? "?"}): ${e.name}: ${e.message}`);
    if (e.stack) lines.push(...e.stack.split("\n").slice(1, 6).map((l) => `    ${l.trim()}`));
  }
  return lines.join("\n");
}

/** A job's history, one event a line: its states, its progress and its log lines, oldest first. */
export function historyLines(events: readonly JobEvent[]): string {
  const text = (e: JobEvent): string => {
    const { data } = e;
    if (e.type === "log") return String(data["line"]);
    if (e.type === "progress") return `${Math.round(Number(data["progress"]) * 100)}%${typeof data["message"] === "string" ? ` ${data["message"]}` : ""}`;
    const attempt = Number(data["attempt"]);
    return `${String(data["state"])}${attempt > 0 ? ` (attempt ${attempt})` : ""}`;
  };
  return ["history:", ...events.map((e) => `  ${time(e.at)}  ${e.type.padEnd(8)} ${text(e)}`)].join("\n");
}
