// Where the reports app keeps its state: one folder (gitignored) with the SQLite database, the
// artifacts, the local mailbox and the signing secret. REPORTS_APP_DATA moves it (tests do), and
// OFFLOAD_BACKEND puts the jobs on a server instead of the SQLite file.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const dataDir = resolve(process.env["REPORTS_APP_DATA"] ?? join(import.meta.dirname, ".offload"));
/**
 * The queue: the SQLite file in the data folder, or the server OFFLOAD_BACKEND names (the same app
 * on Redis or PostgreSQL: `OFFLOAD_BACKEND=redis://127.0.0.1:6379 npm start`).
 */
export const backendUrl = process.env["OFFLOAD_BACKEND"] || `sqlite://${join(dataDir, "offload.db")}`;
export const artifactsDir = join(dataDir, "artifacts");
export const mailboxDir = join(dataDir, "mailbox");

export function ensureDataDirs(): void {
  for (const dir of [dataDir, artifactsDir, mailboxDir]) mkdirSync(dir, { recursive: true });
}

/** The HMAC key for signed URLs and job tokens: made once, kept so links survive a restart. */
export function signingSecret(): string {
  const file = join(dataDir, "secret");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    const secret = randomBytes(32).toString("base64url");
    writeFileSync(file, secret, { mode: 0o600 });
    return secret;
  }
}
