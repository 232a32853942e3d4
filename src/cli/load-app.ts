// `offload worker <app-module>` imports the user's module and finds its Offload instance: the
// default export, an export named `offload`, or the only Offload among the exports.
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { Offload } from "../client/offload.ts";
import { ConfigError } from "../core/errors.ts";

export async function loadApp(modulePath: string): Promise<Offload> {
  const url = pathToFileURL(resolve(modulePath)).href;
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`cannot load app module ${modulePath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // A CommonJS module (TypeScript compiled to CJS) imports as its whole `module.exports` object
  // under `default`, so `exports.default` and `exports.offload` are looked for inside it too.
  const inner = module["default"];
  const found = pick(module, modulePath) ?? (typeof inner === "object" && inner !== null ? pick(inner as Record<string, unknown>, modulePath) : undefined);
  if (!found) {
    const foreign = foreignOffload(module) ?? (typeof inner === "object" && inner !== null ? foreignOffload(inner as Record<string, unknown>) : undefined);
    if (foreign !== undefined) {
      // Not an Offload to this command: its class is another copy's (the app imports the built
      // "offload" while this CLI runs from src/, or the app and the command come from two installs).
      throw new ConfigError(
        `${modulePath} exports ${foreign}, an Offload of another copy of the library than this command's: run the offload command of the package the app imports (npx offload, from the app's folder); inside the Offload repository, import ./src/index.ts rather than "offload"`,
      );
    }
    throw new ConfigError(`${modulePath} exports no Offload instance (export it as default or as "offload")`);
  }
  return found;
}

/** The name of an export that is an Offload of another copy of this library, if one is. */
function foreignOffload(exports: Record<string, unknown>): string | undefined {
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value !== "object" || value === null) continue;
    const made = (value as { constructor?: unknown }).constructor;
    if (typeof made === "function" && made.name === Offload.name && typeof (value as { worker?: unknown }).worker === "function") return name;
  }
  return undefined;
}

function pick(exports: Record<string, unknown>, modulePath: string): Offload | undefined {
  for (const name of ["default", "offload"]) {
    const value = exports[name];
    if (value instanceof Offload) return value;
  }
  const named = new Map<Offload, string>();
  for (const [name, value] of Object.entries(exports)) {
    if (value instanceof Offload && !named.has(value)) named.set(value, name);
  }
  if (named.size > 1) {
    const names = [...named.values()].join(", ");
    throw new ConfigError(`${modulePath} exports ${named.size} Offload instances (${names}): export the one to run as default or as "offload"`);
  }
  return named.keys().next().value;
}
