// The tasks one process knows, by name. A job whose task is missing fails permanently with a
// message naming what this process does know, instead of retrying forever.
import { UnknownTaskError } from "../core/errors.ts";
import type { RegisteredTask } from "../client/task.ts";
import { ConfigError } from "../core/errors.ts";

export class TaskRegistry {
  readonly #tasks = new Map<string, RegisteredTask>();

  add(task: RegisteredTask): void {
    if (this.#tasks.has(task.name)) throw new ConfigError(`a task named ${JSON.stringify(task.name)} is already registered`);
    this.#tasks.set(task.name, task);
  }

  resolve(name: string): RegisteredTask {
    const task = this.#tasks.get(name);
    if (!task) throw new UnknownTaskError(name, this.names());
    return task;
  }

  names(): string[] {
    return [...this.#tasks.keys()].sort();
  }

  /** Every queue some registered task uses by default. */
  queues(): string[] {
    return [...new Set([...this.#tasks.values()].map((t) => t.queue))].sort();
  }
}
