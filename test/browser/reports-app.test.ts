// The demo in a real browser (Debian's headless Chromium, driven by playwright-core): Generate
// report → the progress bar moves live to 100 % → the download is a PDF. Then sign-up and the
// webhook fan-out, whose dead letter the page must show. Keeps a screenshot in test-results/
// (gitignored); with UPDATE_SCREENSHOTS=1 it refreshes docs/screenshots/reports-app.png, the one
// the README links, so a plain `npm test` leaves the tree clean.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, type Page, chromium } from "playwright-core";
import { type RunningApp, isRunning, startReportsApp } from "../examples/reports-app-process.ts";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const SCREENSHOT = process.env["UPDATE_SCREENSHOTS"] === "1"
  ? join(import.meta.dirname, "../../docs/screenshots/reports-app.png")
  : join(import.meta.dirname, "../../test-results/reports-app.png");

describe("examples/reports-app in headless Chromium", () => {
  let app: RunningApp;
  let browser: Browser;
  let page: Page;
  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
    app = await startReportsApp();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1180, height: 560 } });
  });
  after(async () => {
    await browser?.close();
    app?.cleanup();
  });

  it("Generate report: 202, a live progress bar to 100 %, then a PDF to download", async () => {
    await page.goto(app.url);
    // Record every value the percentage shows, to see it move rather than jump to the end.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      const node = document.getElementById("report-percent")!;
      new MutationObserver(() => seen.push(node.textContent ?? "")).observe(node, { childList: true, characterData: true, subtree: true });
    });
    const [accepted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/reports"),
      page.click("#report-go"),
    ]);
    assert.equal(accepted.status(), 202);
    assert.match((await accepted.allHeaders())["location"] ?? "", /^\/jobs\/[0-9a-f-]{36}$/);
    await page.waitForFunction(() => document.getElementById("report-percent")?.textContent === "100 %", undefined, { timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.ok(seen.some((s) => s !== "0 %" && s !== "100 %"), `the bar moved through intermediate values: ${seen.join(", ")}`);
    await page.waitForSelector("#report-download:not([hidden])");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#report-download")]);
    assert.equal(download.suggestedFilename(), "report.pdf");
    const bytes = await readFile(await download.path());
    assert.equal(bytes.subarray(0, 5).toString("latin1"), "%PDF-");
    assert.ok(bytes.length > 1_000);
  });

  it("Sign up answers at once and the welcome email lands in the local mailbox", async () => {
    await page.click("#signup-go");
    await page.waitForFunction(() => /Welcome, Ada/.test(document.getElementById("signup-status")?.textContent ?? ""));
    await page.waitForFunction(() => /Subject: Welcome, Ada!/.test(document.getElementById("mailbox")?.textContent ?? ""), undefined, { timeout: 15_000 });
  });

  it("Webhooks: billing recovers after retries, legacy ends in the dead-letter state", async () => {
    await page.click("#hooks-go");
    const row = (endpoint: string): string => `#hooks tr:has(td:text-is("${endpoint}"))`;
    await page.waitForSelector(`${row("billing")} td.succeeded`, { timeout: 20_000 });
    assert.match(await page.textContent(`${row("billing")} td:nth-child(3)`) ?? "", /attempt 3 of 4/);
    await page.waitForSelector(`${row("legacy")} td.failed`, { timeout: 30_000 });
    const legacy = await page.textContent(row("legacy")) ?? "";
    assert.match(legacy, /failed \(dead letter\)/);
    assert.match(legacy, /attempt 4 of 4 · HTTP 503 from legacy/);
    await page.screenshot({ path: SCREENSHOT });
  });

  it("the recent jobs page lists the jobs with their states", async () => {
    await page.goto(`${app.url}/recent`);
    const table = await page.textContent("table") ?? "";
    assert.match(table, /reports\.render\s*succeeded\s*100 %/);
    assert.match(table, /emails\.welcome\s*succeeded/);
    assert.match(table, /webhooks\.deliver\s*failed[\s\S]*HTTP 503 from legacy/);
  });

  it("Ctrl-C (SIGINT) stops every process the app started", async () => {
    assert.equal(await app.stop("SIGINT"), 0);
    for (const pid of app.pids) assert.equal(isRunning(pid), false, `pid ${pid} is gone`);
  });
});
