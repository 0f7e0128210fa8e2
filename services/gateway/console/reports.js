// #/reports: daily, weekly and monthly reports (GET /v1/reports/{kind}?date=&site=), with
// charts, a CSV download (fetched with the token, saved from a blob) and a print view that
// fits a monthly report on one A4 page.
import { h, replace, options, field } from './dom.js';
import { t, tv, nameOf, duration, percent, when, list } from './i18n.js';
import { request, get, query } from './api.js';
import { siteOf } from './state.js';
import { errorBox, loading, namesFor } from './ui.js';
import { barChart, dayChart } from './charts.js';

const KINDS = ['daily', 'weekly', 'monthly'];
const CLOCKS = ['handoff', 'tenant_trading', 'reply', 'feedback', 'resolution', 'followup'];

function todayAt(tz) {
  try { return new Intl.DateTimeFormat('sv-SE', { timeZone: tz || undefined }).format(new Date()); } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

export async function render(ctx) {
  const me = ctx.me;
  const p = ctx.params;
  const multi = me.sites.length > 1;
  const choice = {
    kind: KINDS.includes(p.get('kind')) ? p.get('kind') : 'daily',
    date: /^\d{4}-\d\d-\d\d$/.test(p.get('date') || '') ? p.get('date') : todayAt(siteOf(ctx.site).timezone),
    site: p.get('site') === 'all' && multi ? 'all' : (me.sites.some((s) => s.id === p.get('site')) ? p.get('site') : ctx.site),
  };
  const kindSel = h('select', { id: 'rep-kind' }, options(KINDS.map((k) => [k, t(`rep.${k}`)]), choice.kind));
  const dateIn = h('input', { type: 'date', id: 'rep-date', value: choice.date, required: true });
  const siteSel = h('select', { id: 'rep-site' }, options([
    ...me.sites.map((s) => [s.id, nameOf(s)]), ...(multi ? [['all', t('site.all')]] : [])], choice.site));
  const csvBtn = h('button', { type: 'button', id: 'rep-csv' }, t('rep.csv'));
  const printBtn = h('button', { type: 'button', id: 'rep-print' }, t('rep.print'));
  const status = h('div', { id: 'rep-status', 'aria-live': 'polite' });
  const out = h('div', { id: 'rep-out' });
  const form = h('form', { class: 'panel filters no-print', id: 'rep-form', novalidate: true },
    field(t('rep.kind'), kindSel), field(t('rep.date'), dateIn), field(t('rep.site'), siteSel),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary', id: 'rep-show' }, t('rep.show')),
      csvBtn, printBtn),
    status);
  replace(ctx.main, h('div', { class: 'reports' }, form, out));

  const path = (extra) => `/v1/reports/${choice.kind}${query({ date: choice.date, site: choice.site === 'all' ? '' : choice.site, ...extra })}`;

  async function load() {
    choice.kind = kindSel.value;
    choice.date = dateIn.value || todayAt(siteOf(ctx.site).timezone);
    choice.site = siteSel.value;
    history.replaceState(null, '', `#/reports${query(choice)}`);
    document.body.dataset.report = choice.kind;
    replace(status);
    replace(out, loading());
    try {
      const r = await get(path());
      if (!ctx.alive()) return;
      const names = r.sites.length === 1 ? await namesFor(r.sites[0]) : null;
      if (!ctx.alive()) return;
      replace(out, report(r, names));
    } catch (e) {
      if (ctx.alive()) replace(out, errorBox(e));
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  for (const el of [kindSel, dateIn, siteSel]) el.addEventListener('change', load);
  printBtn.addEventListener('click', () => window.print());
  csvBtn.addEventListener('click', async () => {
    csvBtn.disabled = true;
    csvBtn.textContent = t('rep.csv.busy');
    replace(status);
    try {
      const res = await request('GET', path({ format: 'csv' }), { raw: true, accept: 'text/csv' });
      const blob = await res.blob();
      const m = /filename="?([^";]+)"?/.exec(res.headers.get('Content-Disposition') || '');
      const name = m ? m[1] : `casewire-${choice.kind}-${choice.date}.csv`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      if (ctx.alive()) replace(status, errorBox(e));
    } finally {
      csvBtn.disabled = false;
      csvBtn.textContent = t('rep.csv');
    }
  });
  await load();
  return () => { delete document.body.dataset.report; };
}

const sorted = (obj) => Object.entries(obj || {}).sort((a, b) => b[1] - a[1]);

function counts(titleKey, obj, kind, id, names) {
  const rows = sorted(obj);
  const label = (k) => (kind === 'department' ? (names ? names.dept(k) : k) : tv(kind, k));
  return h('section', { class: 'block', id },
    h('h3', null, t(titleKey)),
    rows.length ? h('table', { class: 'compact counts' }, h('tbody', null, ...rows.map(([k, v]) =>
      h('tr', { 'data-key': k }, h('th', { scope: 'row' }, label(k)), h('td', { class: 'num' }, String(v))))))
      : h('p', { class: 'muted' }, t('rep.nothing')));
}

function chartBlock(titleKey, obj, kind, id) {
  const rows = sorted(obj);
  return h('section', { class: 'block', id },
    h('h3', null, t(titleKey)),
    rows.length ? barChart(rows.map(([k, v]) => ({ label: tv(kind, k), value: v })), t(titleKey))
      : h('p', { class: 'muted' }, t('rep.nothing')));
}

function table(id, heads, rows, cls) {
  return h('table', { class: `compact ${cls || ''}`, id },
    heads ? h('thead', null, h('tr', null, ...heads.map((x) => h('th', { scope: 'col' }, x)))) : null,
    h('tbody', null, ...rows));
}

function report(r, names) {
  const sites = list(r.sites.map((s) => nameOf(siteOf(s))));
  const fu = r.followup || {};
  const fuGood = fu.followup_rate === null || fu.followup_rate === undefined || fu.followup_rate >= 1;
  const tile = (key, value, cls, id) => h('div', { class: `tile ${cls || ''}` },
    h('div', { class: 'tile-value', id }, String(value)), h('div', { class: 'tile-label' }, t(key)));
  const page = h('article', { class: `report report-${r.report}`, id: 'report', 'data-report': r.report },
    h('header', { class: 'report-head' },
      h('h1', { id: 'rep-title' }, t('rep.heading', { sites, kind: t(`rep.${r.report}`) })),
      h('p', { class: 'muted' }, t('rep.period', { from: r.from, to: r.to, days: r.days }), ' · ',
        t('rep.generated', { time: when(r.generated_at) }))),
    h('div', { class: 'tiles small' },
      tile('rep.received', r.received, null, 'rep-received'),
      tile('rep.valid', r.valid, null, 'rep-valid'),
      tile('rep.invalid', r.invalid, null, 'rep-invalid'),
      tile('rep.repeats', r.repeats, null, 'rep-repeats'),
      tile('rep.followup_rate', percent(fu.followup_rate), fuGood ? 'good' : 'bad', 'rep-followup-rate'),
      tile('rep.satisfaction', percent(fu.satisfaction_rate), null, 'rep-satisfaction')));
  if (fu.without_callback_task?.length) {
    page.append(h('div', { class: 'error', role: 'alert', id: 'rep-missing' },
      h('p', null, t('rep.fu.must'), '. ', t('rep.fu.missing')),
      h('p', null, ...fu.without_callback_task.map((no, i) => [i ? ', ' : '',
        h('a', { href: `#/case/${encodeURIComponent(no)}` }, no)]))));
  }
  const grid = h('div', { class: 'report-grid' });
  grid.append(
    chartBlock('rep.by_category', r.by_category, 'category', 'rep-by-category'),
    chartBlock('rep.by_channel', r.by_channel, 'channel', 'rep-by-channel'),
    counts('rep.by_type', r.by_type, 'type', 'rep-by-type'),
    counts('rep.by_urgency', r.by_urgency, 'urgency', 'rep-by-urgency'),
    counts('rep.by_status', r.by_status, 'status', 'rep-by-status'),
    r.by_department ? counts('rep.by_department', r.by_department, 'department', 'rep-by-department', names)
      : counts('rep.by_department_kind', r.by_department_kind, 'dept_kind', 'rep-by-department-kind'));

  const clockRows = CLOCKS.filter((k) => r.clocks?.[k]).map((k) => {
    const c = r.clocks[k];
    return h('tr', { 'data-clock': k }, h('th', { scope: 'row' }, tv('clock', k)),
      ...[c.met, c.breached, c.running, c.overdue].map((v) => h('td', { class: 'num' }, String(v ?? 0))),
      h('td', { class: `num ${c.met_rate !== null && c.met_rate < 1 ? 'bad-text' : ''}` }, percent(c.met_rate)));
  });
  grid.append(h('section', { class: 'block wide clocks-block' }, h('h3', null, t('rep.clocks')),
    table('rep-clocks', [t('rep.clock'), t('rep.met'), t('rep.breached'), t('rep.running'), t('rep.overdue'), t('rep.met_rate')], clockRows)));

  const timeRows = ['handoff', 'reply', 'resolution'].map((k) => {
    const x = r.times?.[k] || {};
    return h('tr', { 'data-time': k }, h('th', { scope: 'row' }, t(`rep.time.${k}`)),
      h('td', { class: 'num' }, String(x.count ?? 0)), h('td', { class: 'num' }, duration(x.median_s)),
      h('td', { class: 'num' }, duration(x.p90_s)));
  });
  grid.append(h('section', { class: 'block' }, h('h3', null, t('rep.times')),
    table('rep-times', [t('rep.time'), t('rep.count'), t('rep.median'), t('rep.p90')], timeRows)));

  const fuRows = ['resolved', 'callback_tasks', 'followed_up', 'waiting', 'unreachable', 'satisfied', 'not_satisfied']
    .map((k) => h('tr', { 'data-key': k }, h('th', { scope: 'row' }, t(`rep.fu.${k}`)),
      h('td', { class: 'num', id: `rep-fu-${k.replace('_', '-')}` }, String(fu[k] ?? 0))));
  fuRows.push(h('tr', null, h('th', { scope: 'row' }, t('rep.followup_rate')),
    h('td', { class: `num ${fuGood ? 'good-text' : 'bad-text'}` }, percent(fu.followup_rate))));
  grid.append(h('section', { class: 'block' }, h('h3', null, t('rep.followup')), table('rep-followup', null, fuRows)));

  const causes = (r.top_causes || []).map((c) => h('tr', null, h('td', null, h('code', null, c.rule)),
    h('td', null, tv('category', c.category)), h('td', { class: 'num' }, String(c.count))));
  grid.append(h('section', { class: 'block' }, h('h3', null, t('rep.top_causes')),
    causes.length ? table('rep-causes', [t('rep.rule'), t('rep.category'), t('rep.count')], causes)
      : h('p', { class: 'muted' }, t('rep.nothing'))));
  page.append(grid);
  const bottom = h('div', { class: 'report-bottom' });
  page.append(bottom);

  if (r.by_site && r.by_site.length > 1) {
    const rows = r.by_site.map((s) => h('tr', { 'data-site': s.site }, h('th', { scope: 'row' }, nameOf(s)),
      h('td', { class: 'num' }, String(s.received)), h('td', { class: 'num' }, String(s.breached)),
      h('td', { class: 'num' }, String(s.resolved)),
      h('td', { class: `num ${s.followup_rate !== null && s.followup_rate < 1 ? 'bad-text' : 'good-text'}` }, percent(s.followup_rate)),
      h('td', { class: 'num' }, percent(s.satisfaction_rate))));
    bottom.append(h('section', { class: 'block wide' }, h('h3', null, t('rep.by_site')),
      table('rep-by-site', [t('rep.site_col'), t('rep.received'), t('rep.site.breached'), t('rep.site.resolved'),
        t('rep.followup_rate'), t('rep.satisfaction')], rows)));
  }
  if (r.report !== 'daily' && r.by_day?.length) {
    const rows = r.by_day.map((d) => h('tr', { 'data-day': d.date }, h('th', { scope: 'row' }, d.date),
      h('td', { class: 'num' }, String(d.received)), h('td', { class: 'num' }, String(d.resolved))));
    bottom.append(h('section', { class: 'block wide', id: 'rep-by-day' }, h('h3', null, t('rep.by_day')),
      dayChart(r.by_day, t('rep.by_day'), [t('rep.day.received'), t('rep.day.resolved')]),
      h('details', { class: 'no-print' }, h('summary', null, t('rep.by_day')),
        table('rep-days', [t('rep.day'), t('rep.day.received'), t('rep.day.resolved')], rows))));
  }
  return page;
}
