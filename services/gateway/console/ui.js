// Pieces the screens share: error boxes, badges, names from the directory, deadline chips.
import { h } from './dom.js';
import { t, tv, nameOf, duration } from './i18n.js';
import { directory, serverNow } from './api.js';

// An API error, plainly: what it means for the person, then the API's own words.
export function errorBox(err, lead) {
  const box = h('div', { class: 'error', role: 'alert' });
  if (!err || err.status === undefined) {
    box.append(h('p', null, lead || t('error.title')), h('p', { class: 'detail' }, String(err?.message || err)));
    return box;
  }
  let what = lead;
  if (!what) {
    if (err.status === 0) what = t('error.network');
    else if (err.status === 404) what = t('error.notfound');
    else if (err.status === 403) what = t('error.forbidden');
    else if (err.status === 409) what = t('error.conflict');
    else what = t('error.title');
  }
  box.append(h('p', null, what));
  if (err.status) {
    box.append(h('p', { class: 'detail' }, t('error.code', { status: err.status, code: err.code }),
      err.message ? `: ${err.message}` : '', err.field ? ` (${err.field})` : ''));
  }
  return box;
}

export function loading() { return h('p', { class: 'loading', role: 'status' }, t('common.loading')); }

export function badge(kind, value) {
  if (!value) return h('span', { class: 'muted' }, t('common.dash'));
  return h('span', { class: `badge ${kind}-${value}` }, tv(kind, value));
}

// Names for the ids in a site's cases (people, departments, tenants); the id when unknown.
export async function namesFor(site) {
  let dir = { departments: [], staff: [], tenants: [] };
  try { dir = await directory(site); } catch { /* ids it is */ }
  const staff = new Map(dir.staff.map((s) => [s.id, s]));
  const depts = new Map(dir.departments.map((d) => [d.id, d]));
  const tenants = new Map(dir.tenants.map((x) => [x.id, x]));
  return {
    dir,
    staff: (id) => (id ? (staff.get(id)?.name || id) : t('common.dash')),
    dept: (id) => (id ? (nameOf(depts.get(id)) || id) : t('common.dash')),
    tenant: (id) => (id ? (nameOf(tenants.get(id)) || id) : t('common.dash')),
    actor(id, kind) {
      if (!id) return t('common.dash');
      if (staff.has(id)) return staff.get(id).name;
      if (tenants.has(id)) return nameOf(tenants.get(id));
      const sys = tv('actor', id);
      if (sys !== id) return sys;
      return kind ? `${id} (${tv('actor_kind', kind)})` : id;
    },
  };
}

// A running clock: time left from its due time, coloured as it runs out.
//   ok    plenty of time
//   warn  under half of its span left, or under 5 minutes
//   late  past due, or breached already
export function clockLevel(dueMs, spanMs, breached, now) {
  const left = dueMs - now;
  if (breached || left <= 0) return 'late';
  if (left < 5 * 60000 || (spanMs > 0 && left < spanMs / 2)) return 'warn';
  return 'ok';
}

export function clockChip(kind, dueMs, spanMs, breached, level) {
  const el = h('span', { class: 'clock' });
  el.dataset.due = String(dueMs);
  el.dataset.span = String(spanMs || 0);
  el.dataset.kind = kind;
  if (breached) el.dataset.breached = '1';
  if (level) el.dataset.level = String(level);
  tickChip(el, serverNow());
  return el;
}

function tickChip(el, now) {
  const due = Number(el.dataset.due);
  const breached = el.dataset.breached === '1';
  const lvl = clockLevel(due, Number(el.dataset.span), breached, now);
  const left = Math.round((due - now) / 1000);
  const time = left > 0 ? t('clock.left', { d: duration(left) }) : t('clock.over', { d: duration(-left) });
  let text = `${tv('clock', el.dataset.kind)} ${time}`;
  if (breached && left > 0) text += ` · ${t('clock.breached')}`;
  if (el.dataset.level) text += ` · ${t('clock.level', { n: el.dataset.level })}`;
  if (el.textContent !== text) el.textContent = text;
  el.className = `clock clock-${lvl}`;
}

export function tickClocks(root) {
  const now = serverNow();
  for (const el of root.querySelectorAll('.clock[data-due]')) tickChip(el, now);
}

// A polite live region for "saved", "claimed"...
export function notice(text, kind) {
  return h('p', { class: `notice ${kind || 'ok'}`, role: 'status' }, text);
}
