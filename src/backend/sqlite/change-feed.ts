// Tells listeners that the database may have changed. Writes from this process are announced
// directly; writes from other processes are noticed through the WAL file changing (inotify via
// fs.watch on the folder), with a slower poll behind it for file systems where watching does not
// work. Both check PRAGMA data_version, which changes only when ANOTHER connection committed, so
// this process's own writes (which also touch the WAL) do not wake anyone twice.
import { ChangeListeners } from "../change-listeners.ts";
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";

export class ChangeFeed {
  readonly #listeners = new ChangeListeners();
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  readonly #file: string | undefined;
  readonly #dataVersion: () => number;
  readonly #pollMs: number;
  #lastVersion = -1;
  #recheck: NodeJS.Timeout | undefined;

  /** `file` is undefined for in-memory databases, which no other process can write. */
  constructor(file: string | undefined, dataVersion: () => number, pollMs: number) {
    this.#file = file;
    this.#dataVersion = dataVersion;
    this.#pollMs = pollMs;
  }

  subscribe(listener: () => void, newWorkOnly = false): () => void {
    const remove = this.#listeners.add(listener, newWorkOnly);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      remove();
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Announce a change made by this process (coalesced per macrotask); see ChangeListeners for `newWork`. */
  announce(newWork = true): void {
    this.#listeners.announce(newWork);
  }


  close(): void {
    this.#listeners.clear();
    this.#stop();
  }

  #start(): void {
    if (this.#file === undefined) return;
    const wal = `${basename(this.#file)}-wal`;
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, name) => {
        if (name === wal) this.#checkSoon();
      });
      this.#watcher.on("error", () => this.#watcher?.close());
    } catch {
      this.#watcher = undefined; // the poll below still notices changes
    }
    this.#lastVersion = this.#dataVersion();
    this.#poll = setInterval(() => this.#checkVersion(), this.#pollMs);
    this.#poll.unref();
  }

  /** Announces when another connection committed since the last look; true if it did. */
  #checkVersion(): boolean {
    const version = this.#dataVersion();
    if (version === this.#lastVersion) return false;
    this.#lastVersion = version;
    this.announce();
    return true;
  }

  /**
   * A WAL write event can arrive before the writer's commit frame is down (a transaction is
   * several writes, and inotify merges identical events), so a first look may see no commit yet.
   * Look again shortly after, instead of leaving it to the slow poll.
   */
  #checkSoon(): void {
    if (this.#checkVersion() || this.#recheck) return;
    this.#recheck = setTimeout(() => {
      this.#recheck = undefined;
      if (!this.#checkVersion()) {
        this.#recheck = setTimeout(() => {
          this.#recheck = undefined;
          this.#checkVersion();
        }, 5);
      }
    }, 1);
  }

  #stop(): void {
    if (this.#recheck) clearTimeout(this.#recheck);
    this.#recheck = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
