// The LISTEN connection's notifications: every writing statement notifies with its session's
// origin, and " quiet" when it brings nothing to claim. A backend skips its own (it announced its
// writes directly), and a worker's claim loop skips quiet ones: woken by its own claims and
// completions, a worker claimed again for nothing two or three times per job.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { Listener } from "../../src/backend/postgres/listener.ts";
import { POSTGRES_URL } from "./postgres-helpers.ts";

describe("postgres: change notifications", () => {
  it("the listener skips notifications from its own origin, and tells new work from quiet changes", async () => {
    const channel = `offload_listener_test_${process.pid}`;
    const listener = new Listener({ connectionString: POSTGRES_URL }, channel, 60_000, () => {}, "mine");
    const notifier = new pg.Client({ connectionString: POSTGRES_URL });
    await notifier.connect();
    try {
      listener.subscribe(() => {});
      await listener.ready();
      const calls: boolean[] = [];
      let wake = (): void => {};
      // Recorded where each notification is handled, before calls are coalesced for listeners.
      listener.announce = (newWork = true) => {
        calls.push(newWork);
        wake();
      };
      const announced = (): Promise<void> => new Promise((resolve) => (wake = resolve));
      // Delivered in commit order on the one LISTEN connection, each handled as it is read.
      let next = announced();
      await notifier.query("BEGIN");
      await notifier.query(
        "SELECT pg_notify($1, 'mine'), pg_notify($1, 'mine quiet'), pg_notify($1, 'theirs'), pg_notify($1, 'theirs quiet'), pg_notify($1, ''), pg_notify($1, ' quiet')",
        [channel],
      );
      await notifier.query("COMMIT");
      await next;
      next = announced();
      await notifier.query("SELECT pg_notify($1, 'last')", [channel]);
      await next;
      // 'theirs', 'theirs quiet', '' (the app's own transaction, or an older process: may be
      // anything), ' quiet', and 'last'; nothing of 'mine'.
      assert.deepEqual(calls, [true, false, true, false, true]);
    } finally {
      await notifier.end();
      await listener.close();
    }
  });
});
