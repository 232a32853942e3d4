// Tells listeners that the database may have changed. Writes from this process are announced
// directly; writes from other processes are noticed through the WAL file changing (inotify via
// fs.watch on the folder), with a slower poll behind it for file systems where watching does not
// work. Both check PRAGMA data_version, which changes only when ANOTHER connection committed, so
// this process's own writes (which also touch the WAL) do not wake anyone twice.
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";

export class ChangeFeed {
  readonly #listeners = new Set<() => void>();
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  readonly #file: string | undefined;
  readonly #dataVersion: () => number;
  readonly #pollMs: number;
  #lastVersion = -1;
  #pending = false;

  /** `file` is undefined for in-memory databases, which no other process can write. */
  constructor(file: string | undefined, dataVersion: () => number, pollMs: number) {
    this.#file = file;
    this.#dataVersion = dataVersion;
    this.#pollMs = pollMs;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Announce a change made by this process (coalesced into one call per macrotask). */
  announce(): void {
    if (this.#pending || this.#listeners.size === 0) return;
    this.#pending = true;
    setImmediate(() => {
      this.#pending = false;
      for (const listener of [...this.#listeners]) listener();
    });
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
        if (name === wal) this.#checkVersion();
      });
      this.#watcher.on("error", () => this.#watcher?.close());
    } catch {
      this.#watcher = undefined; // the poll below still notices changes
    }
    this.#lastVersion = this.#dataVersion();
    this.#poll = setInterval(() => this.#checkVersion(), this.#pollMs);
    this.#poll.unref();
  }

  #checkVersion(): void {
    const version = this.#dataVersion();
    if (version !== this.#lastVersion) {
      this.#lastVersion = version;
      this.announce();
    }
  }

  #stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
