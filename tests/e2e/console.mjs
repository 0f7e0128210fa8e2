// The staff console end to end, in Debian's Chromium (playwright-core, no test runner).
// Prints TAP-style lines, "ok - what" / "not ok - what # why", that tests/run.sh counts.
//   CW_GATEWAY_URL=http://127.0.0.1:8080 node tests/e2e/console.mjs
// Settings (environment): CW_E2E_ARTIFACTS (screenshots; default tests/e2e/artifacts/),
// CW_E2E_SLOW (a multiplier for every wait: 3 in a sanitizer build), CW_E2E_WATCHDOG (s).
// The flow: a desk agent records a case at the desk, finds it in the open list once routed,
// acknowledges and resolves it; the call centre's agent claims its follow-up call and
// records "satisfied", which closes it; today's numbers and the daily report show it.
// Around it: another site's staff get the not-found page (the API said 404), a tenant's key
// cannot sign in (401), a security guard sees no close button, the monthly report prints on
// one A4 page, and no page logged an error or a CSP violation.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GW = (process.env.CW_GATEWAY_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const OUT = process.env.CW_E2E_ARTIFACTS || fileURLToPath(new URL('./artifacts/', import.meta.url));
const SLOW = Math.max(1, Number(process.env.CW_E2E_SLOW) || 1);
const WATCHDOG_S = Number(process.env.CW_E2E_WATCHDOG) || 420;
const T = (ms) => Math.round(ms * SLOW);
const CONSOLE = `${GW}/console/`;
const TOKENS = {
  desk: 'demo-desk_agent-SH01',
  agent: 'demo-callcenter_agent-SH01',
  other: 'demo-desk_agent-SH02',
  tenant: 'demo-tenant-T-SH01-0312',
  guard: 'demo-security_guard-SH01',
};
mkdirSync(OUT, { recursive: true });

// --- reporting ------------------------------------------------------------------------
let failures = 0;
const ok = (what) => console.log(`ok - ${what}`);
const notOk = (what, why) => {
  failures += 1;
  console.log(`not ok - ${what}${why ? ` # ${String(why).split('\n')[0].slice(0, 300)}` : ''}`);
};
let broken = null; // the step the flow could not get past
async function step(what, fn, { needs = true } = {}) {
  if (needs && broken) { notOk(what, `not reached: "${broken}" failed`); return undefined; }
  try {
    const r = await fn();
    ok(typeof r === 'string' ? `${what} (${r})` : what);
    return r ?? true;
  } catch (e) {
    notOk(what, e?.message || e);
    if (needs) broken = what;
    await failureShots();
    return undefined;
  }
}

// Every open page as it was when a step failed: fail-<n>-<who>.png.
const open = new Map(); // page -> who
let failShots = 0;
async function failureShots() {
  failShots += 1;
  for (const [p, who] of open) {
    if (p.isClosed()) { open.delete(p); continue; }
    try {
      await p.screenshot({ path: join(OUT, `fail-${failShots}-${who.replace(/\W+/g, '_')}.png`), fullPage: true, timeout: 5000 });
    } catch { /* best effort */ }
  }
}
function assert(cond, why) { if (!cond) throw new Error(why); }

let browser = null;
const watchdog = setTimeout(async () => {
  notOk(`the browser test finished within ${WATCHDOG_S} s`, 'watchdog fired');
  try { await browser?.close(); } catch { /* going anyway */ }
  process.exit(1);
}, WATCHDOG_S * 1000);
watchdog.unref();

// --- the browser ----------------------------------------------------------------------
const problems = []; // console errors, page errors and CSP violations, from every page
function watch(page, who, expected = []) {
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const text = m.text();
    if (m.type() === 'warning' && !/Content.Security.Policy|CSP/i.test(text)) return;
    if (expected.some((re) => re.test(text))) return;
    problems.push(`${who}: console ${m.type()}: ${text} (${m.location()?.url || ''})`);
  });
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
}

async function person(who, expected) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'zh-CN',
    acceptDownloads: true });
  // A CSP violation reports itself on the console, where watch() sees it.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(T(20000));
  watch(page, who, expected);
  open.set(page, who);
  return { context, page };
}

async function shot(page, name, opts = {}) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true, ...opts });
}

// Signs in with a token; the answer of GET /v1/me.
async function signIn(page, token) {
  await page.goto(CONSOLE);
  await page.locator('#token').waitFor({ timeout: T(20000) });
  await page.fill('#token', token);
  const [res] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/me', { timeout: T(20000) }),
    page.click('#signin-submit'),
  ]);
  return res;
}

async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

// Polls check() (which returns a truthy value when done) until it does, up to ms.
async function until(what, ms, check, every = 1000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await check(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`${what}: not within ${Math.round(ms / 1000)} s${last instanceof Error ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function api(method, path, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body) { headers['Content-Type'] = 'application/json'; headers['Idempotency-Key'] = `e2e-${Date.now()}-${Math.random()}`; }
  const res = await fetch(`${GW}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

const num = async (page, sel) => Number((await page.locator(sel).textContent()).replace(/[^\d.]/g, ''));

// --- the flow -------------------------------------------------------------------------
async function main() {
  const launchedAt = Date.now();
  browser = await chromium.launch({
    executablePath: process.env.CW_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
    timeout: T(60000),
  });
  ok(`Chromium ${browser.version()} starts (${Date.now() - launchedAt} ms)`);

  // A tenant's key is not a staff token: 401, and the sign-in says so.
  await step('a tenant\'s API key cannot sign in to the console (401 shown)', async () => {
    const { context, page } = await person('tenant', [/status of 401/]);
    await page.goto(CONSOLE);
    await page.locator('#signin').waitFor();
    await shot(page, '01-signin');
    const res = await signIn(page, TOKENS.tenant);
    assert(res.status() === 401, `GET /v1/me answered ${res.status()}`);
    await page.locator('#signin-error').waitFor();
    assert(await page.locator('#top').isHidden(), 'the header is shown');
    await shot(page, '01b-signin-tenant-401');
    await context.close();
  }, { needs: false });

  const desk = await person('desk agent SH01', [/status of 422/]);
  const { page } = desk;
  await step('the desk agent signs in (GET /v1/me 200; the header shows 王芳 and the site)', async () => {
    const res = await signIn(page, TOKENS.desk);
    assert(res.status() === 200, `GET /v1/me answered ${res.status()}`);
    await page.locator('#who-name').waitFor();
    assert((await page.locator('#who-name').textContent()) === '王芳', 'name is not 王芳');
    assert(await page.locator('#who').getByText('华信广场').count() > 0, 'no site in the header');
    assert(await page.locator('.nav-link[data-screen="callbacks"]').count() === 1, 'no follow-up queue link');
  });

  // The desk intake: a product-quality complaint about a tenant shop.
  let caseNo = null;
  await step('the intake form records a service-desk complaint (202) and shows the case number', async () => {
    await go(page, '#/intake');
    await page.locator('#intake-form').waitFor();
    await page.selectOption('#in-channel', 'service_desk');
    await page.fill('#in-text', '顾客在3楼悦茶坊买的芝士奶盖茶，喝到一半发现杯底有一根头发，茶也有异味，顾客很不满');
    await page.fill('#in-name', '李娜');
    await page.fill('#in-phone', '139 1234 5678');
    await page.selectOption('#in-tenant', 'T-SH01-0312');
    await page.fill('#in-request', '退款，并要求商户说明情况');
    await page.locator('#in-floor').evaluate((el) => el.value === '3F' || (() => { throw new Error(`floor ${el.value}`); })());
    await shot(page, '02a-intake-form');
    const [res] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/cases' && r.request().method() === 'POST', { timeout: T(20000) }),
      // a double click: one case, the same Idempotency-Key
      page.dblclick('#in-submit'),
    ]);
    assert(res.status() === 202, `POST /v1/cases answered ${res.status()}: ${await res.text()}`);
    const key = res.request().headers()['idempotency-key'];
    assert(key && key.length >= 16, 'no Idempotency-Key sent');
    await page.locator('#intake-case-no').waitFor();
    caseNo = (await page.locator('#intake-case-no').textContent()).trim();
    assert(/^SH01-\d{6}-\d{4,}$/.test(caseNo), `case number "${caseNo}"`);
    assert(caseNo === (await res.json()).case_no, 'the number shown is not the one answered');
    assert(/\d{4}-\d\d-\d\d \d\d:\d\d/.test(await page.locator('#intake-reply-by').textContent()), 'no reply-by time');
    await shot(page, '02-intake-case-number');
    return caseNo;
  });

  await step('the intake form shows a 422 next to the field it names (customer.phone)', async () => {
    await page.click('#in-again');
    await page.locator('#intake-form').waitFor();
    await page.fill('#in-text', '顾客电话咨询停车收费标准');
    await page.selectOption('#in-channel', 'phone');
    await page.fill('#in-phone', '12345');
    const [res] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/cases' && r.request().method() === 'POST'),
      page.click('#in-submit'),
    ]);
    assert(res.status() === 422, `POST /v1/cases answered ${res.status()}`);
    await page.locator('#in-phone-err').waitFor();
    assert(/customer\.phone|mobile/.test(await page.locator('#in-phone-err').textContent()), 'no message at the phone field');
  }, { needs: false });

  // The case in the open list, once the router has routed it (an owner and clocks).
  await step('the case appears in the open list, routed: owner, department and running clocks', async () => {
    await go(page, '#/cases');
    const row = page.locator(`#cases-body tr[data-case="${caseNo}"]`);
    await until('the routed case in the list', T(60000), async () => {
      if (!(await row.count())) {
        // faster than the 15 s refresh: show the list again
        await go(page, '#/today'); await go(page, '#/cases');
        await page.locator('#cases-summary').filter({ hasText: /\S/ }).waitFor({ timeout: T(10000) });
        return false;
      }
      return (await row.locator('.clock').count()) > 0 && !/^—$/.test((await row.locator('td').nth(6).textContent()).trim());
    }, 2000);
    assert(/\d+(天|小时|分|秒)/.test(await row.locator('.clock').first().textContent()), 'no time left on the clock');
    // a clock shown to the second (under an hour left) ticks every second
    const seconds = row.locator('.clock', { hasText: '秒' }).first();
    let ticks = 'no clock shown to the second';
    if (await seconds.count()) {
      const before = await seconds.textContent();
      await until('the time left ticks', T(5000), async () => (await seconds.textContent()) !== before, 300);
      ticks = 'the time left ticks';
    }
    await shot(page, '03-open-cases');
    return ticks;
  });

  await step('the case page shows the record: text, customer, tenant, classification with rules, owner, clocks, history', async () => {
    await page.click(`#cases-body tr[data-case="${caseNo}"] a.case-no`);
    await page.locator(`#case-page[data-case="${caseNo}"]`).waitFor();
    await page.locator('#case-classification').waitFor({ timeout: T(30000) });
    const text = await page.locator('#case-page').textContent();
    for (const want of ['芝士奶盖茶', '李娜', '+8613912345678', '悦茶坊', '王芳']) assert(text.includes(want), `no "${want}"`);
    assert(await page.locator('#case-classification code').count() >= 4, 'no rules');
    assert(await page.locator('#case-clocks tr[data-clock]').count() >= 2, 'no clocks');
    assert(await page.locator('#case-history tr[data-event="submitted"]').count() === 1, 'no submitted entry');
    assert(await page.locator('#case-history tr[data-event="routed"]').count() === 1, 'no routed entry');
    await shot(page, '04-case-page');
  });

  await step('acknowledge, then resolve, on the case page', async () => {
    await page.click('#act-acknowledge');
    await page.locator('#case-page[data-status="acknowledged"]').waitFor();
    await page.fill('#act-reply-text', '已与悦茶坊核实，为您办理全额退款，商户已致歉');
    await page.click('#act-reply');
    await page.locator('#case-history tr[data-event="reply"]').waitFor();
    await page.fill('#act-note-text', '商户已全额退款18元并当面致歉，顾客接受');
    await page.click('#act-resolve');
    await page.locator('#case-page[data-status="resolved"]').waitFor();
    assert(await page.locator('#act-close').count() === 0, 'close offered before a satisfied follow-up');
    await shot(page, '05-case-resolved');
  });

  // Another site's staff: the same 404 as for a case that does not exist.
  await step('another site\'s desk agent (SH02) gets the not-found page, and the API answered 404', async () => {
    assert(caseNo, 'no case was recorded');
    const { context, page: p } = await person('desk agent SH02', [/status of 404/]);
    const res = await signIn(p, TOKENS.other);
    assert(res.status() === 200, `sign-in answered ${res.status()}`);
    await p.locator('#who-name').waitFor();
    const [answer] = await Promise.all([
      p.waitForResponse((r) => decodeURIComponent(new URL(r.url()).pathname) === `/v1/cases/${caseNo}`),
      go(p, `#/case/${caseNo}`),
    ]);
    assert(answer.status() === 404, `GET /v1/cases/${caseNo} answered ${answer.status()}`);
    await p.locator('#case-notfound').waitFor();
    await shot(p, '06-other-site-not-found');
    await context.close();
  }, { needs: false });

  // The call centre: the follow-up call.
  const cc = await person('call-centre agent SH01');
  const q = cc.page;
  await step('the call-centre agent signs in and the callback appears in the queue', async () => {
    const res = await signIn(q, TOKENS.agent);
    assert(res.status() === 200, `sign-in answered ${res.status()}`);
    await q.locator('#who-name').waitFor();
    await go(q, '#/callbacks');
    // the notifier makes the task within seconds of the resolve; the queue refreshes every 5 s
    await q.locator(`#cb-body tr[data-case="${caseNo}"]`).waitFor({ timeout: T(60000) });
  });

  await step('claim next: the case, its customer and the call script are shown', async () => {
    const [res] = await Promise.all([
      q.waitForResponse((r) => /\/v1\/callbacks\/[^/]+\/claim$/.test(new URL(r.url()).pathname) && r.status() === 200),
      q.click('#cb-claim'),
    ]);
    assert(res.status() === 200, `claim answered ${res.status()}`);
    await q.locator(`#cb-call[data-case="${caseNo}"]`).waitFor();
    assert((await q.locator('#cb-phone').textContent()) === '+8613912345678', 'no phone number');
    assert((await q.locator('#cb-resolution').textContent()).includes('全额退款'), 'no resolution notes');
    assert((await q.locator('#cb-script').textContent()).includes(caseNo), 'the script does not name the case');
    await q.locator(`#cb-body tr.mine[data-case="${caseNo}"]`).waitFor({ timeout: T(15000) });
    await shot(q, '07-callback-claimed');
  });

  await step('"satisfied" records the follow-up and closes the case', async () => {
    await q.fill('#cb-note', '顾客表示满意');
    await q.click('#cb-satisfied');
    await q.locator('#cb-recorded').waitFor();
    await go(q, `#/case/${caseNo}`);
    await q.locator(`#case-page[data-case="${caseNo}"][data-status="closed"]`).waitFor();
    assert(await q.locator('#case-history tr[data-event="followup"]').count() === 1, 'no follow-up in the history');
    assert(await q.locator('#case-history tr[data-event="close"]').count() === 1, 'no close in the history');
    await shot(q, '08-case-closed');
  });

  await step('today at a glance shows it: resolved ≥ 1, followed up ≥ 1', async () => {
    await go(q, '#/today');
    await until('today\'s numbers', T(30000), async () => {
      await q.locator('#today-resolved').waitFor();
      if ((await num(q, '#today-resolved')) >= 1 && (await num(q, '#today-followed_up')) >= 1) return true;
      await go(q, '#/cases'); await go(q, '#/today');
      return false;
    }, 2000);
    assert((await num(q, '#today-new')) >= 1, 'new < 1');
    await shot(q, '09-today');
    return `resolved ${await num(q, '#today-resolved')}, followed up ${await num(q, '#today-followed_up')}`;
  });

  await step('the daily report reflects it: received ≥ 1, follow-up rate 100%, satisfied ≥ 1', async () => {
    // the day the case was received, from its number (SH01-YYMMDD-NNNN): right across midnight too
    const [, yy, mm, dd] = /-(\d\d)(\d\d)(\d\d)-/.exec(caseNo);
    await go(q, `#/reports?kind=daily&date=20${yy}-${mm}-${dd}`);
    await q.locator(`#report[data-report="daily"]`).waitFor();
    assert((await q.locator('#rep-title + p').textContent()).includes(`20${yy}-${mm}-${dd}`), 'not the day of the case');
    assert((await num(q, '#rep-received')) >= 1, 'received < 1');
    assert((await q.locator('#rep-followup-rate').textContent()) === '100%', `follow-up rate ${await q.locator('#rep-followup-rate').textContent()}`);
    assert(await q.locator('.tile.good #rep-followup-rate').count() === 1, 'the follow-up rate is not green');
    assert((await num(q, '#rep-fu-satisfied')) >= 1, 'satisfied < 1');
    assert(await q.locator('#rep-by-category svg.chart rect.bar').count() >= 1, 'no category chart');
    await shot(q, '10-daily-report');
  });

  await step('"Download CSV" saves the report as CSV (fetched with the token)', async () => {
    await go(q, '#/reports?kind=daily');
    await q.locator('#report[data-report="daily"]').waitFor();
    const [download] = await Promise.all([q.waitForEvent('download', { timeout: T(20000) }), q.click('#rep-csv')]);
    const file = join(OUT, 'daily-report.csv');
    await download.saveAs(file);
    const csv = readFileSync(file, 'utf8');
    assert(csv.startsWith('section,item,measure,value'), `CSV starts with ${csv.slice(0, 40)}`);
    assert(/\.csv$/.test(download.suggestedFilename()), `file name ${download.suggestedFilename()}`);
    return download.suggestedFilename();
  }, { needs: false });

  await step('the monthly report\'s print view fits one A4 page (navigation and buttons hidden)', async () => {
    await go(q, '#/reports?kind=daily');
    await q.locator('#report').waitFor();
    await q.selectOption('#rep-kind', 'monthly');
    await q.locator('#report[data-report="monthly"] #rep-by-day svg').waitFor();
    await q.emulateMedia({ media: 'print' });
    assert(await q.locator('#top').isHidden() && await q.locator('#rep-form').isHidden(), 'navigation or buttons shown in print');
    const viewport = q.viewportSize();
    await q.setViewportSize({ width: 794, height: 1123 }); // A4 at 96 dpi
    await shot(q, '11-monthly-print');
    await q.setViewportSize(viewport);
    const pdf = await q.pdf({ format: 'A4', printBackground: true, preferCSSPageSize: true });
    writeFileSync(join(OUT, '11-monthly-print.pdf'), pdf);
    const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) || []).length;
    await q.emulateMedia({ media: 'screen' });
    assert(pages === 1, `${pages} pages`);
    return '1 page';
  }, { needs: false });

  await step('the language switch shows English and is remembered after a reload', async () => {
    await go(q, '#/cases');
    await q.locator('#cases-table').waitFor();
    await q.click('#lang-switch');
    await q.locator('.nav-link[data-screen="cases"]', { hasText: 'Open cases' }).waitFor();
    await q.reload();
    await q.locator('.nav-link[data-screen="cases"]', { hasText: 'Open cases' }).waitFor();
    await shot(q, '12-english');
    await q.click('#lang-switch');
    await q.locator('.nav-link[data-screen="cases"]', { hasText: '未结案件' }).waitFor();
  }, { needs: false });

  // A security guard's role may not close: no close button, where a desk agent has one.
  await step('a security guard sees no close button on a case the desk agent may close', async () => {
    const r1 = await api('POST', '/v1/cases', TOKENS.desk, { site: 'SH01', channel: 'service_desk',
      text: '顾客反映B1停车场出口道闸抬杆慢，排队十多分钟', customer: { name: '周先生', phone: '13700001111' } });
    assert(r1.status === 202, `POST /v1/cases ${r1.status} ${r1.text}`);
    const no = r1.json.case_no;
    for (const body of [{ action: 'resolve', note: '已调整道闸' }, { action: 'followup', outcome: 'satisfied' }]) {
      const r = await api('POST', `/v1/cases/${no}/events`, TOKENS.desk, body);
      assert(r.status === 202, `${body.action}: ${r.status} ${r.text}`);
    }
    await go(page, `#/case/${no}`);
    await page.locator(`#case-page[data-case="${no}"] #act-close`).waitFor();
    const g = await person('security guard SH01');
    const res = await signIn(g.page, TOKENS.guard);
    assert(res.status() === 200, `sign-in answered ${res.status()}`);
    await g.page.locator('#who-name').waitFor();
    await go(g.page, `#/case/${no}`);
    await g.page.locator(`#case-page[data-case="${no}"][data-status="resolved"]`).waitFor();
    await g.page.locator('#case-actions').waitFor();
    assert(await g.page.locator('#act-close').count() === 0, 'the guard has a close button');
    assert(await g.page.locator('#act-reopen, #act-followup').count() === 0, 'the guard has reopen or follow-up');
    await shot(g.page, '13-guard-case-page');
    await g.context.close();
  }, { needs: false });

  if (problems.length) notOk(`no console errors, page errors or CSP violations on any page (${problems.length})`, problems.join(' | '));
  else ok('no console errors, page errors or CSP violations on any page');
  await desk.context.close();
  await cc.context.close();
}

try {
  await main();
} catch (e) {
  notOk('the browser test ran to its end', e?.stack || e);
} finally {
  try { await browser?.close(); } catch { /* closing */ }
  clearTimeout(watchdog);
}
console.log(`# screenshots in ${OUT}; ${failures} failed`);
process.exit(failures ? 1 : 0);
