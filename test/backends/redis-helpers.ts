// Shared by the Redis test files: each works under its own key prefix and removes it afterwards.
import type { Redis } from "ioredis";

/** Deletes every key matching a SCAN pattern, in pages, without blocking the server as KEYS would. */
export async function unlinkMatching(admin: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", pattern, "COUNT", 1_000);
    if (keys.length > 0) await admin.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** A test file's last step: its keys deleted, then its admin connection closed (even if the delete failed). */
export async function unlinkAndQuit(admin: Redis, pattern: string): Promise<void> {
  try {
    await unlinkMatching(admin, pattern);
  } finally {
    await admin.quit();
  }
}

/** The field of the keys hash that holds `task`'s idempotency `key` (lib.lua key_field: keys are per task). */
export function keyField(task: string, key: string): string {
  return `${Buffer.byteLength(task)}:${task}${key}`;
}
