// The package as users install it: built with `npm run build`'s script into a temp folder, then
// imported by name from an app beside it. Every subpath in package.json's "exports" must resolve
// to built JavaScript with the names the docs tell users to import, the SQL/Lua files must be
// beside the adapters, and the `offload` bin must run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "offload-package-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("the built package", () => {
  it("resolves every export by name, runs a job through offload/sqlite, and its bin answers --help", { timeout: 120_000 }, async () => {
    const pkg = join(dir, "offload");
    mkdirSync(pkg);
    await run(process.execPath, [join(root, "scripts/build.ts"), "--out", join(pkg, "dist")], { cwd: root });
    cpSync(join(root, "package.json"), join(pkg, "package.json"));
    symlinkSync(join(root, "node_modules"), join(pkg, "node_modules")); // its dependencies

    const app = join(dir, "app");
    mkdirSync(join(app, "node_modules"), { recursive: true });
    symlinkSync(pkg, join(app, "node_modules", "offload"));
    writeFileSync(join(app, "check.mjs"), `
      const names = {
        "offload": ["Offload", "Retry", "Permanent", "ConfigError", "registerBackend"],
        "offload/testing": ["FakeClock", "drain", "nextEvent"],
        "offload/http": ["createJobsHttp", "toNodeListener"],
        "offload/sqlite": ["SqliteBackend"],
        "offload/postgres": ["PostgresBackend"],
        "offload/redis": ["RedisBackend"],
      };
      const missing = [];
      for (const [specifier, wanted] of Object.entries(names)) {
        const module = await import(specifier);
        for (const name of wanted) if (typeof module[name] !== "function") missing.push(specifier + " " + name);
      }
      const { Offload } = await import("offload");
      const { SqliteBackend } = await import("offload/sqlite");
      const { drain } = await import("offload/testing");
      const backend = new SqliteBackend({ path: ":memory:" });
      const offload = new Offload({ backend });
      const task = offload.task({ name: "double", run: (n) => n * 2 });
      const job = await task.enqueue(21);
      await drain(offload);
      console.log(JSON.stringify({ missing, result: await job.result() }));
      await offload.close();
      await backend.close();
    `);
    const { stdout } = await run(process.execPath, ["check.mjs"], { cwd: app });
    assert.deepEqual(JSON.parse(stdout), { missing: [], result: 42 });

    const help = await run(process.execPath, [join(pkg, "dist/cli/main.js"), "--help"], { cwd: app });
    assert.match(help.stdout, /worker/);
    // The built bin finds the package's own package.json, as the one in src/ finds the repository's.
    const version = await run(process.execPath, [join(pkg, "dist/cli/main.js"), "--version"], { cwd: app });
    assert.match(version.stdout, /^\d+\.\d+\.\d+\S*\n$/);
  });
});
