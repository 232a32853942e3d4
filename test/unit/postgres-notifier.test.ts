// The PostgreSQL backend's notifier (src/backend/postgres/notifier.ts): a NOTIFY after each write
// has committed, coalesced, but never fewer than a listener needs: a change made while one is on
// its way gets one more after it (the one on its way may have been read before the change).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Notifier, QUIET_PACE_MS } from "../../src/backend/postgres/notifier.ts";
import { deferred, turn } from "../support/deferred.ts";

/** A notifier whose sends wait until the test answers them, in order; its pauses are recorded and pass at once. */
function held(): { notifier: Notifier; sent: string[]; pauses: number[]; answer: () => Promise<void> } {
  const sent: string[] = [];
  const pauses: number[] = [];
  const replies: { resolve: (value: void) => void }[] = [];
  const notifier = new Notifier("abc", (payload) => {
    sent.push(payload);
    const reply = deferred<void>();
    replies.push(reply);
    return reply.promise;
  }, (ms) => {
    pauses.push(ms);
    return Promise.resolve();
  });
  const answer = async (): Promise<void> => {
    replies.shift()?.resolve();
    for (let i = 0; i < 5; i++) await turn();
  };
  return { notifier, sent, pauses, answer };
}

describe("postgres notifier", () => {
  it("sends at once when nothing is on its way; changes made meanwhile share one more, sent after it", async () => {
    const { notifier, sent, answer } = held();
    notifier.notify(false);
    assert.deepEqual(sent, ["abc"]);
    notifier.notify(false);
    notifier.notify(false);
    notifier.notify(false);
    assert.deepEqual(sent, ["abc"], "nothing more while one is on its way");
    await answer();
    assert.deepEqual(sent, ["abc", "abc"], "one more for the three changes made meanwhile");
    await answer();
    assert.deepEqual(sent, ["abc", "abc"], "and no more than that");
    notifier.notify(false);
    assert.deepEqual(sent, ["abc", "abc", "abc"], "idle again: at once");
    await answer();
  });

  it("paces quiet NOTIFYs owed one after another; new work is never held back", async () => {
    const { notifier, sent, pauses, answer } = held();
    notifier.notify(false);
    notifier.notify(false);
    await answer();
    await answer();
    assert.deepEqual([sent, pauses], [["abc", "abc"], []], "new work: the owed one at once");
    notifier.notify(true);
    notifier.notify(true);
    await answer();
    assert.equal(pauses.length, 1, "a quiet one owed waits out the pace from the last send");
    assert.ok((pauses[0] ?? 0) > 0 && (pauses[0] ?? 0) <= QUIET_PACE_MS, String(pauses[0]));
    await answer();
    assert.deepEqual(sent, ["abc", "abc", "abc quiet", "abc quiet"]);
    notifier.notify(true);
    await answer();
    assert.equal(pauses.length, 1, "a lone quiet change is sent at once");
  });

  it("keeps quiet changes and new work apart: each kind has its own", async () => {
    const { notifier, sent, answer } = held();
    notifier.notify(true);
    notifier.notify(false);
    assert.deepEqual(sent, ["abc quiet", "abc"]);
    await answer();
    await answer();
  });

  it("a send that fails is not sent again on its own, and the next change is sent", async () => {
    const sent: string[] = [];
    let fail = true;
    const notifier = new Notifier("abc", (payload) => {
      sent.push(payload);
      return fail ? Promise.reject(new Error("Connection terminated unexpectedly")) : Promise.resolve();
    });
    notifier.notify(false);
    await notifier.close();
    assert.deepEqual(sent, ["abc"]);
    fail = false;
    const again = new Notifier("abc", (payload) => {
      sent.push(payload);
      return Promise.resolve();
    });
    again.notify(true);
    await again.close();
    assert.deepEqual(sent, ["abc", "abc quiet"]);
  });

  it("close() waits for the sends on their way and sends nothing after", async () => {
    const { notifier, sent, answer } = held();
    notifier.notify(false);
    notifier.notify(false); // one more owed
    let closed = false;
    const closing = notifier.close().then(() => (closed = true));
    await turn();
    assert.equal(closed, false, "the send on its way is waited for");
    await answer();
    await closing;
    assert.deepEqual(sent, ["abc"], "the one owed is dropped: the backend is closing");
    notifier.notify(false);
    assert.deepEqual(sent, ["abc"]);
  });
});
