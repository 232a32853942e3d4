// `npm run build`: compiles src/ to dist/ (JavaScript + declarations) and copies the SQL and Lua
// files each adapter loads at run time from beside its own module.
import { execFileSync } from "node:child_process";
import { cpSync, globSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
const assets = globSync("src/**/*.{sql,lua}");
for (const file of assets) {
  const target = join("dist", file.slice("src/".length));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(file, target);
}
console.log(`built dist/ (${assets.length} SQL/Lua files copied)`);
