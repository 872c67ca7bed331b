import { createHash } from 'node:crypto';
import { DASHBOARD_SCRIPT } from './page-script.js';

/**
 * The dashboard page: one self-contained document (inline style and script, no external asset, no data in it).
 * The page itself needs no token, since it holds nothing; the data comes from the admin API, which does.
 * The Content-Security-Policy allows exactly this script and style (by hash) and requests to this origin.
 */
const STYLE = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5d6878; --line: #d9dee6; --bg: #f5f7fa; --card: #fff;
  --loss: #2563eb; --f1: #059669; --bad: #dc2626; --warn: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 12px 24px; background: #1d2430; color: #fff; }
header h1 { margin: 0; font-size: 18px; }
header #coord { color: #c8d0dc; flex: 1; }
header button { background: transparent; color: #fff; border: 1px solid #6b7686; border-radius: 4px; padding: 4px 10px; cursor: pointer; }
main { padding: 16px 24px; max-width: 1100px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
section { margin-bottom: 20px; }
#login form { display: flex; gap: 8px; align-items: end; background: var(--card); padding: 16px; border: 1px solid var(--line); border-radius: 6px; max-width: 560px; }
#login label { display: flex; flex-direction: column; gap: 4px; flex: 1; }
#login input { font: inherit; padding: 6px 8px; border: 1px solid var(--line); border-radius: 4px; }
#login button { font: inherit; padding: 6px 14px; border: 0; border-radius: 4px; background: var(--loss); color: #fff; cursor: pointer; }
#login-error { color: var(--bad); min-height: 1.4em; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.big { font-size: 26px; font-weight: 600; margin: 0; }
.sub { color: var(--muted); margin: 2px 0 0; font-size: 12px; }
.bar { height: 6px; background: var(--line); border-radius: 3px; margin-top: 6px; overflow: hidden; }
#privacy-bar { height: 100%; width: 0; background: var(--warn); }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
tr.state-online td:nth-child(2) { color: var(--f1); font-weight: 600; }
tr.state-revoked td:nth-child(2), tr.round-aborted td:nth-child(2) { color: var(--bad); }
tr.state-awaiting-enrollment td:nth-child(2) { color: var(--warn); }
#chart { width: 100%; height: auto; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
#chart .plot { fill: none; }
#chart .grid { stroke: var(--line); stroke-width: 1; }
#chart .tick { font-size: 10px; fill: var(--muted); }
#chart .tick.loss { fill: var(--loss); }
#chart .tick.f1 { fill: var(--f1); }
#chart .series { fill: none; stroke-width: 2; }
#chart .series.loss, #chart .dot.loss { stroke: var(--loss); }
#chart .series.f1, #chart .dot.f1 { stroke: var(--f1); }
#chart .dot { fill: #fff; stroke-width: 2; }
#chart .abort { stroke: var(--bad); stroke-width: 2; }
#chart .empty { fill: var(--muted); }
.legend span { margin-right: 14px; font-size: 12px; }
.legend .loss { color: var(--loss); } .legend .f1 { color: var(--f1); } .legend .abort { color: var(--bad); }
`;

const BODY = `
<header><h1>fedmeta coordinator</h1><span id="coord"></span><button id="logout" type="button" hidden>Forget token</button></header>
<main>
<section id="login">
  <form id="login-form" autocomplete="off">
    <label>Admin token <input id="token" type="password" autocomplete="off" spellcheck="false" required></label>
    <button type="submit">Open dashboard</button>
  </form>
  <p id="login-error" role="alert"></p>
</section>
<section id="dash" hidden>
  <div class="cards">
    <div class="card"><h2>Released version</h2><p id="released" class="big">–</p><p id="releases" class="sub"></p></div>
    <div class="card"><h2>Latest version</h2><p id="version" class="big">–</p><p id="next-round" class="sub"></p></div>
    <div class="card"><h2>Sites online</h2><p id="online" class="big">–</p><p id="sites-total" class="sub"></p></div>
    <div class="card"><h2>Privacy budget</h2><p id="privacy" class="big">–</p><div class="bar"><div id="privacy-bar"></div></div><p id="privacy-sub" class="sub"></p></div>
  </div>
  <section><h2>Round in flight</h2><p id="inflight">–</p></section>
  <section>
    <h2>Rounds over time</h2>
    <svg id="chart" viewBox="0 0 720 240" role="img" aria-label="Mean query loss and validation F1 per round"></svg>
    <p class="legend"><span class="loss">● mean query loss (left axis)</span><span class="f1">● mean validation F1 (right axis)</span><span class="abort">✕ aborted attempt</span></p>
  </section>
  <section>
    <h2>Sites</h2>
    <table id="sites"><thead><tr><th>Site</th><th>State</th><th>Last seen</th><th>Enrolled</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Rounds (latest 50)</h2>
    <table id="rounds"><thead><tr><th>Round</th><th>Status</th><th>Version</th><th>Accepted / sampled</th><th>Rejected</th><th>Query loss</th><th>Val F1</th><th>Duration</th><th>Ended</th></tr></thead><tbody></tbody></table>
  </section>
  <p id="updated" class="sub"></p>
</section>
</main>
`;

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

export const DASHBOARD_HTML =
  '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
  '<title>fedmeta coordinator</title><link rel="icon" href="data:,">' +
  `<style>${STYLE}</style></head><body>${BODY}<script>${DASHBOARD_SCRIPT}</script></body></html>\n`;

/** Response headers of the page: no caching, no framing, no referrer, and nothing runs but this page's own script. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${hash(DASHBOARD_SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
};
