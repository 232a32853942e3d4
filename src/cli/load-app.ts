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
  const candidates = [module["default"], module["offload"], ...Object.values(module)].filter((v): v is Offload => v instanceof Offload);
  const found = candidates[0];
  if (!found) throw new ConfigError(`${modulePath} exports no Offload instance (export it as default or as "offload")`);
  return found;
}
