// #/cases: the open cases of the current site, most pressing first (GET /v1/cases), with
// filters; refreshes itself every 15 s and the time left ticks every second.
import { h, replace, options, field } from './dom.js';
import { t, tv, valueList, nameOf, when } from './i18n.js';
import { get, query, syncClock, directory } from './api.js';
import { errorBox, badge, namesFor, clockChip, tickClocks } from './ui.js';

const FILTERS = ['status', 'category', 'urgency', 'department', 'owner', 'tenant'];
const STATUSES = ['received', 'assigned', 'acknowledged', 'resolved', 'reopened', 'closed'];

export async function render(ctx) {
  const site = ctx.site;
  const filters = {};
  for (const f of FILTERS) filters[f] = ctx.params.get(f) || '';
  let dir = { departments: [], staff: [], tenants: [] };
  try { dir = await directory(site); } catch { /* pickers stay short */ }
  const names = await namesFor(site);
  if (!ctx.alive()) return null;

  const any = [['', t('common.any')]];
  const pickers = {
    status: [['', t('cases.status.open')], ['all', t('cases.status.all')], ...STATUSES.map((s) => [s, tv('status', s)])],
    category: [...any, ...valueList('category').map((c) => [c, tv('category', c)])],
    urgency: [...any, ...valueList('urgency').map((u) => [u, tv('urgency', u)])],
    department: [...any, ...dir.departments.map((d) => [d.id, nameOf(d)])],
    owner: [...any, ...dir.staff.map((s) => [s.id, `${s.name} (${s.id})`])],
    tenant: [...any, ...dir.tenants.map((x) => [x.id, nameOf(x)])],
  };
  const selects = {};
  const bar = h('form', { class: 'filters', id: 'case-filters' });
  for (const f of FILTERS) {
    const sel = h('select', { id: `filter-${f}`, name: f }, options(pickers[f], filters[f]));
    sel.addEventListener('change', () => { filters[f] = sel.value; remember(); load(); });
    selects[f] = sel;
    bar.append(field(t(`cases.filter.${f}`), sel));
  }
  const clearBtn = h('button', { type: 'button', id: 'filters-clear' }, t('cases.filter.clear'));
  clearBtn.addEventListener('click', () => {
    for (const f of FILTERS) { filters[f] = ''; selects[f].value = ''; }
    remember(); load();
  });
  bar.append(h('div', { class: 'field' }, clearBtn));
  bar.addEventListener('submit', (e) => e.preventDefault());

  const summary = h('p', { class: 'summary', id: 'cases-summary', 'aria-live': 'polite' });
  const status = h('div', { id: 'cases-status' });
  const tbody = h('tbody', { id: 'cases-body' });
  const table = h('table', { class: 'cases', id: 'cases-table' },
    h('thead', null, h('tr', null, ...['no', 'received', 'summary', 'category', 'urgency', 'status', 'owner',
      'department', 'clocks'].map((c) => h('th', { scope: 'col' }, t(`cases.col.${c}`))))),
    tbody);
  replace(ctx.main, h('section', { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h1', null, t('cases.title')), h('span', { class: 'muted' }, t('cases.auto'))),
    bar, summary, status, h('div', { class: 'table-wrap' }, table)));

  function remember() {
    const q = query(Object.fromEntries(FILTERS.map((f) => [f, filters[f]])));
    history.replaceState(null, '', `#/cases${q}`);
  }

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const ans = await get(`/v1/cases${query({ site, ...filters })}`);
      if (!ctx.alive()) return;
      syncClock(ans.now_ms);
      replace(status);
      replace(tbody, ...ans.cases.map((c) => row(c, names)));
      if (!ans.cases.length) tbody.append(h('tr', null, h('td', { colspan: 9, class: 'empty' }, t('cases.empty'))));
      replace(summary, t('cases.count', { total: ans.total }),
        ans.cases.length < ans.total ? ` · ${t('cases.shown', { n: ans.cases.length })}` : '',
        ans.truncated ? ` · ${t('cases.truncated')}` : '',
        ' · ', t('common.updated', { time: new Date().toLocaleTimeString(undefined, { hour12: false }) }));
    } catch (e) {
      if (ctx.alive()) replace(status, errorBox(e));
    } finally {
      busy = false;
    }
  }
  await load();
  const refresh = setInterval(load, 15000);
  const tick = setInterval(() => tickClocks(tbody), 1000);
  return () => { clearInterval(refresh); clearInterval(tick); };
}

function row(c, names) {
  const link = h('a', { href: `#/case/${encodeURIComponent(c.case_no)}`, class: 'case-no' }, c.case_no);
  const clocks = h('td', { class: 'clocks' });
  for (const k of c.clocks || []) {
    clocks.append(clockChip(k.clock, k.due_ms, k.due_ms - c.created_ms, k.breached || (c.breached || []).includes(k.clock), k.level));
  }
  return h('tr', { class: c.overdue ? 'overdue' : null, 'data-case': c.case_no },
    h('td', null, link),
    h('td', { class: 'nowrap' }, when(c.received_at)),
    h('td', { class: 'summary-cell' }, c.summary || ''),
    h('td', null, tv('category', c.category)),
    h('td', null, badge('urgency', c.urgency)),
    h('td', null, badge('status', c.status)),
    h('td', null, c.owner ? names.staff(c.owner) : t('common.dash')),
    h('td', null, c.department ? names.dept(c.department) : t('common.dash')),
    clocks);
}
