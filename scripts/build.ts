// `npm run build`: compiles src/ to dist/ (JavaScript + declarations) and copies the SQL and Lua
// files each adapter loads at run time from beside its own module.
import { execFileSync } from "node:child_process";
import { cpSync, globSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";

// `--out <dir>` builds elsewhere (the package test builds into a temp folder, leaving dist/ alone).
const at = process.argv.indexOf("--out");
const out = at > 0 ? (process.argv[at + 1] ?? "dist") : "dist";
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json", "--outDir", out], { stdio: "inherit" });
const assets = globSync("src/**/*.{sql,lua}");
for (const file of assets) {
  const target = join(out, file.slice("src/".length));
  mkdirSync(dirname(target), { recursive: true });
  cpSync(file, target);
}
console.log(`built ${out}/ (${assets.length} SQL/Lua files copied)`);
