// `npm run bench [-- --backend sqlite|redis|postgres] [--n 20000]`: runs bench/<backend>.ts.
import { existsSync } from "node:fs";
import { option } from "./measure.ts";

const args = process.argv.slice(2);
const backend = option(args, "backend", "sqlite");
if (!/^[a-z-]+$/.test(backend) || !existsSync(new URL(`./${backend}.ts`, import.meta.url))) {
  console.error(`unknown --backend ${backend} (try sqlite, redis or postgres)`);
  process.exit(2);
}
const module = (await import(`./${backend}.ts`)) as { main: (args: string[]) => Promise<void> };
await module.main(args);
