// Waiting on a server state that sends no event (a cluster's state, replication, a port that
// starts accepting connections): look, and look again after a pause, within a limit.
import { setTimeout as delay } from "node:timers/promises";

/** Waits until `holds()`, looking every `stepMs`; fails naming `what` after `limitMs`. */
export async function until(holds: () => Promise<boolean>, what: string, stepMs: number, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await holds())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${limitMs} ms`);
    await delay(stepMs);
  }
}
