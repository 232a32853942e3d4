// The reports app's two pages, as plain HTML strings. The home page's script shows the 202
// pattern from the browser's side: POST, read the 202 body, follow the job over SSE (with the
// scoped token from the body), and close the stream on the `result` event.
import type { JobRecord } from "../../src/index.ts";

const STYLE = `
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 14px 28px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 19px; margin: 0; } header a { color: #9cc3ff; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 18px; padding: 22px 28px; }
  section { background: #fff; border-radius: 10px; padding: 16px 20px; box-shadow: 0 1px 3px #0002; }
  h2 { font-size: 16px; margin: 0 0 10px; } button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #3563d8; background: #3d6df0; color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: #3563d8; } input { font: inherit; padding: 5px 8px; width: 42%; }
  .bar { height: 14px; background: #e4e7ee; border-radius: 7px; overflow: hidden; margin: 10px 0 4px; }
  .bar > div { height: 100%; width: 0; background: #2fa86a; transition: width .2s; }
  .muted { color: #667; font-size: 13px; } .log { font: 12px ui-monospace, monospace; color: #445; max-height: 90px; overflow: auto; white-space: pre-wrap; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; } td, th { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eee; }
  .state { font-weight: 600; } .succeeded { color: #1c8a52; } .failed { color: #c8332b; } .retrying { color: #c07a00; } .active { color: #3563d8; } .cancelled { color: #777; }
  pre { background: #f3f4f7; padding: 8px; font-size: 12px; white-space: pre-wrap; margin: 6px 0; }`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
async function post(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
  return { status: response.status, body: await response.json() };
}
// Follows one job: every feed event to onEvent, the final job view to onResult.
function follow(links, onEvent, onResult) {
  const source = new EventSource(links.events);
  for (const type of ["state", "progress", "log"]) source.addEventListener(type, (e) => onEvent(type, JSON.parse(e.data)));
  source.addEventListener("result", (e) => { source.close(); onResult(JSON.parse(e.data)); });
  return source;
}

let reportLinks;
$("report-go").onclick = async () => {
  $("report-go").disabled = true;
  $("report-download").hidden = true; $("report-log").textContent = "";
  setProgress(0, "");
  const { status, body } = await post("/reports", { title: $("report-title").value });
  reportLinks = body.links;
  $("report-status").textContent = status + " Accepted: job " + body.id.slice(-12) + " queued";
  $("report-cancel").hidden = false;
  follow(body.links, (type, data) => {
    if (type === "progress") setProgress(data.progress, data.message);
    if (type === "log") $("report-log").textContent += data.line + "\\n";
    if (type === "state") $("report-status").textContent = "state: " + data.state;
  }, (job) => {
    $("report-go").disabled = false; $("report-cancel").hidden = true;
    $("report-status").innerHTML = "state: <span class='state " + esc(job.state) + "'>" + esc(job.state) + "</span>";
    if (job.state === "succeeded") {
      const link = $("report-download"); link.href = job.result.url; link.hidden = false;
    }
  });
};
$("report-cancel").onclick = () => reportLinks && fetch(reportLinks.cancel, { method: "POST" });
function setProgress(fraction, message) {
  const percent = Math.round(fraction * 100);
  $("report-bar").style.width = percent + "%";
  $("report-percent").textContent = percent + " %";
  $("report-message").textContent = message || "";
}

$("signup-go").onclick = async () => {
  const started = performance.now();
  const { status, body } = await post("/signup", { name: $("signup-name").value, email: $("signup-email").value });
  const ms = Math.round(performance.now() - started);
  if (status !== 202) { $("signup-status").textContent = body.error.message; return; }
  $("signup-status").textContent = body.message + " (answered in " + ms + " ms)";
  follow(body.links, () => {}, (job) => { $("signup-status").textContent += " Email job: " + job.state + "."; loadMailbox(); });
};
async function loadMailbox() {
  const { mails } = await (await fetch("/api/mailbox")).json();
  $("mailbox").innerHTML = mails.length ? mails.map((m) => "<pre>" + esc(m.text) + "</pre>").join("") : "<p class='muted'>empty</p>";
}
loadMailbox();

$("hooks-go").onclick = async () => {
  const { body } = await post("/webhooks");
  $("hooks-event").textContent = "event " + body.event + ": " + body.deliveries.length + " deliveries";
  $("hooks").innerHTML = body.deliveries.map((d) => "<tr id='hook-" + d.id + "'><td>" + esc(d.endpoint) + "</td><td class='state'>queued</td><td></td></tr>").join("");
  for (const d of body.deliveries) {
    const row = $("hook-" + d.id);
    const show = (job) => {
      row.cells[1].className = "state " + job.state; row.cells[1].textContent = job.state === "failed" ? "failed (dead letter)" : job.state;
      let note = "attempt " + job.attempt + " of " + job.maxAttempts;
      if (job.error) note += " · " + job.error.message;
      if (job.retryAt) note += " · next try in " + Math.max(0, Math.round((Date.parse(job.retryAt) - Date.now()) / 1000)) + " s";
      row.cells[2].textContent = note;
    };
    follow(d.links, async (type) => { if (type === "state") show((await (await fetch(d.links.self)).json())); }, show);
  }
};`;

/** Where web and worker share their jobs, for the page's banner: `backendUrl` is config.ts's. */
function sharedStore(backendUrl: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(backendUrl)?.[0].toLowerCase() ?? "";
  if (scheme.startsWith("redis")) return "one Redis server";
  if (scheme.startsWith("postgres")) return "one PostgreSQL database";
  return "one SQLite file";
}

export function homePage(backendUrl: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reports: Offload demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head><body>
<header><h1>Reports</h1><span class="muted">an Offload demo: web and worker are separate processes on ${sharedStore(backendUrl)}</span><a href="/recent">Recent jobs</a></header>
<main>
<section><h2>Generate report</h2>
  <input id="report-title" value="Quarterly report" aria-label="Report title"> <button id="report-go">Generate report</button> <button id="report-cancel" class="secondary" hidden>Cancel</button>
  <div class="bar" role="progressbar"><div id="report-bar"></div></div>
  <div><strong id="report-percent">0 %</strong> <span id="report-message" class="muted"></span></div>
  <div id="report-status" class="muted">POST /reports answers 202 at once; the progress comes over SSE.</div>
  <p><a id="report-download" hidden download>Download report.pdf</a></p>
  <div id="report-log" class="log"></div>
</section>
<section><h2>Sign up</h2>
  <input id="signup-name" value="Ada" aria-label="Name"> <input id="signup-email" value="ada@example.com" aria-label="Email"> <button id="signup-go">Sign up</button>
  <p id="signup-status" class="muted">The request returns at once; a job writes the welcome email to a local mailbox.</p>
  <h2>Mailbox</h2><div id="mailbox"></div>
</section>
<section><h2>Webhooks</h2>
  <button id="hooks-go">Send order.created</button> <span id="hooks-event" class="muted"></span>
  <p class="muted">Fan-out to 4 local endpoints: billing fails twice then recovers, legacy is down for good (4 attempts, backoff 1 s, 2 s, 4 s, then the dead-letter state).</p>
  <table><thead><tr><th>endpoint</th><th>state</th><th>detail</th></tr></thead><tbody id="hooks"></tbody></table>
</section>
</main><script type="module">${SCRIPT}</script></body></html>`;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function recentJobsPage(jobs: readonly JobRecord[]): string {
  const rows = jobs.map((j) => `<tr><td>${escapeHtml(j.id.slice(-12))}</td><td>${escapeHtml(j.task)}</td><td class="state ${j.state}">${j.state}</td>
<td>${j.progress === undefined ? "" : `${Math.round(j.progress * 100)} %`}</td><td>${j.attempt} / ${j.maxAttempts}</td>
<td>${new Date(j.createdAt).toLocaleTimeString("en-GB")}</td><td>${escapeHtml(j.errors.at(-1)?.message.split("\n")[0] ?? "")}</td></tr>`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Recent jobs</title><meta http-equiv="refresh" content="2">
<style>${STYLE}</style></head><body><header><h1>Recent jobs</h1><a href="/">Back</a><span class="muted">refreshes every 2 s</span></header>
<main><section><table><thead><tr><th>job</th><th>task</th><th>state</th><th>progress</th><th>attempts</th><th>created</th><th>last error</th></tr></thead>
<tbody>${rows || "<tr><td colspan=7 class=muted>no jobs yet</td></tr>"}</tbody></table></section></main></body></html>`;
}
