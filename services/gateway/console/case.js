// #/case/<case_id or case_no>: the whole record (GET /v1/cases/{id}), its clocks and history,
// and the actions the person's roles and the case's status allow (POST /v1/cases/{id}/events).
import { h, replace, field } from './dom.js';
import { t, tv, nameOf, duration, when, list } from './i18n.js';
import { get, post, newKey } from './api.js';
import { state, siteOf } from './state.js';
import { errorBox, badge, namesFor, clockChip, tickClocks, notice } from './ui.js';

// When the case's status allows each action (docs/api.md, staff actions).
const ALLOWED = {
  acknowledge: (c) => ['received', 'assigned', 'reopened'].includes(c.status),
  note: (c) => c.status !== 'closed',
  reply: (c) => c.status !== 'closed',
  reassign: (c) => c.status !== 'closed',
  resolve: (c) => c.status !== 'resolved' && c.status !== 'closed',
  reopen: (c) => c.status === 'resolved' || c.status === 'closed',
  followup: (c) => c.status === 'resolved',
  close: (c) => c.status === 'resolved' && c.followup === 'satisfied',
};
export const allowedActions = (record, actions) =>
  Object.keys(ALLOWED).filter((a) => actions.includes(a) && ALLOWED[a](record));

export async function render(ctx) {
  const id = ctx.arg;
  let timer = null;
  let tick = null;
  let message = null;

  async function load() {
    let record;
    try {
      record = await get(`/v1/cases/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!ctx.alive()) return;
      if (e.status === 404) {
        replace(ctx.main, h('section', { class: 'panel', id: 'case-notfound' },
          h('h1', null, t('case.title'), ' ', id), h('p', { class: 'error', role: 'alert' }, t('case.notfound')),
          h('p', null, h('a', { href: '#/cases' }, t('nav.cases')))));
      } else {
        replace(ctx.main, h('section', { class: 'panel' }, errorBox(e)));
      }
      return;
    }
    if (!ctx.alive()) return;
    const names = await namesFor(record.site);
    if (!ctx.alive()) return;
    draw(record, names);
    // Not routed yet: look again in a few seconds.
    clearTimeout(timer);
    if (!record.classification) timer = setTimeout(load, 3000);
  }

  function draw(c, names) {
    const page = h('div', { class: 'case-page', id: 'case-page', 'data-case': c.case_no, 'data-status': c.status },
      head(c), message ? notice(message) : null,
      h('div', { class: 'case-grid' }, details(c, names), h('div', null, classification(c, names), clocks(c))),
      actionsPanel(c, names), history(c, names));
    replace(ctx.main, page);
  }

  async function act(c, action, body, buttons, status) {
    for (const b of buttons) b.disabled = true;
    replace(status);
    try {
      await post(`/v1/cases/${encodeURIComponent(c.case_id)}/events`, { action, ...body }, newKey());
      message = t('case.act.done', { action: t(`action.${action}`) });
      await load();
    } catch (e) {
      for (const b of buttons) b.disabled = false;
      replace(status, errorBox(e));
    }
  }

  function actionsPanel(c, names) {
    const can = allowedActions(c, state.me.actions);
    const panel = h('section', { class: 'panel no-print', id: 'case-actions' }, h('h2', null, t('case.actions')));
    if (!can.length) { panel.append(h('p', { class: 'muted' }, t('case.act.none'))); return panel; }
    const status = h('div', { id: 'act-status', 'aria-live': 'polite' });
    const buttons = [];
    const button = (action, cls) => {
      const b = h('button', { type: 'button', id: `act-${action}`, class: cls || null, 'data-action': action },
        t(`action.${action}`));
      buttons.push(b);
      return b;
    };
    const note = h('textarea', { id: 'act-note-text', rows: 2, maxlength: 4000 });
    const simple = ['acknowledge', 'note', 'resolve', 'reopen', 'close'].filter((a) => can.includes(a));
    if (simple.length || can.includes('reassign') || can.includes('followup')) {
      panel.append(field(t('case.act.note'), note, t('case.act.note.hint')));
    }
    const row = h('div', { class: 'buttons' });
    for (const a of simple) {
      const b = button(a, a === 'resolve' || a === 'acknowledge' || a === 'close' ? 'primary' : null);
      b.addEventListener('click', () => {
        const text = note.value.trim();
        if (a === 'note' && !text) { replace(status, h('p', { class: 'error', role: 'alert' }, t('case.act.need.note'))); return; }
        act(c, a, text ? { note: text } : {}, buttons, status);
      });
      row.append(b);
    }
    panel.append(row);
    if (can.includes('reassign')) {
      const dir = names.dir;
      const to = h('select', { id: 'act-to' },
        h('option', { value: '' }, t('case.act.reassign.pick')),
        h('optgroup', { label: t('case.act.people') },
          ...dir.staff.map((s) => h('option', { value: `staff:${s.id}` }, `${s.name} (${names.dept(s.department)})`))),
        h('optgroup', { label: t('case.act.departments') },
          ...dir.departments.map((d) => h('option', { value: `dept:${d.id}` }, nameOf(d)))));
      const b = button('reassign');
      b.addEventListener('click', () => {
        if (!to.value) { replace(status, h('p', { class: 'error', role: 'alert' }, t('case.act.need.to'))); return; }
        const [kind, target] = [to.value.slice(0, to.value.indexOf(':')), to.value.slice(to.value.indexOf(':') + 1)];
        const body = kind === 'staff' ? { to_staff: target } : { to_department: target };
        if (note.value.trim()) body.note = note.value.trim();
        act(c, 'reassign', body, buttons, status);
      });
      panel.append(h('div', { class: 'inline' }, field(t('case.act.reassign.to'), to), b));
    }
    if (can.includes('followup')) {
      const outcome = h('select', { id: 'act-outcome' },
        ...['satisfied', 'not_satisfied', 'unreachable'].map((o) => h('option', { value: o }, tv('outcome', o))));
      const b = button('followup');
      b.addEventListener('click', () => {
        const body = { outcome: outcome.value };
        if (note.value.trim()) body.note = note.value.trim();
        act(c, 'followup', body, buttons, status);
      });
      panel.append(h('div', { class: 'inline' }, field(t('case.act.outcome'), outcome), b));
    }
    if (can.includes('reply')) {
      const reply = h('textarea', { id: 'act-reply-text', rows: 2, maxlength: 4000 });
      const b = button('reply');
      b.addEventListener('click', () => {
        const text = reply.value.trim();
        if (!text) { replace(status, h('p', { class: 'error', role: 'alert' }, t('case.act.need.reply'))); return; }
        act(c, 'reply', { reply: text }, buttons, status);
      });
      panel.append(h('div', { class: 'inline' }, field(t('case.act.reply'), reply), b));
    }
    panel.append(status);
    return panel;
  }

  await load();
  tick = setInterval(() => tickClocks(ctx.main), 1000);
  return () => { clearTimeout(timer); clearInterval(tick); };
}

function head(c) {
  return h('section', { class: 'panel case-head' },
    h('h1', null, h('span', { class: 'case-no-big', id: 'case-no' }, c.case_no), ' ',
      h('span', { id: 'case-status' }, badge('status', c.status)),
      c.urgency ? [' ', badge('urgency', c.urgency)] : null),
    h('p', { class: 'muted' },
      nameOf(siteOf(c.site)), ' · ', tv('channel', c.channel), ' · ',
      t('case.received'), ' ', when(c.received_at), ' · ', t('case.replyby'), ' ', when(c.reply_by), ' · ',
      t('case.updated'), ' ', when(c.updated_at)));
}

function dl(rows) {
  const list = h('dl', { class: 'facts' });
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) continue;
    list.append(h('dt', null, k), h('dd', null, v));
  }
  return list;
}

function details(c, names) {
  const cu = c.customer || {};
  const loc = c.location || {};
  const p = c.purchase || null;
  const phone = cu.phone ? h('a', { href: `tel:${cu.phone}`, class: 'phone' }, cu.phone) : null;
  const where = [loc.floor, loc.unit, loc.brand, loc.detail].filter(Boolean).join(' · ');
  let purchase = null;
  if (p) {
    purchase = [p.date, p.amount ? `${p.amount} ${p.currency || 'CNY'}` : null, p.receipt_no, p.order_no,
      p.under_warranty === true ? t('case.warranty') : null].filter(Boolean).join(' · ');
  }
  return h('section', { class: 'panel' },
    h('h2', null, t('case.text')),
    h('p', { class: 'case-text', id: 'case-text' }, c.text || ''),
    dl([
      [t('case.request'), c.request],
      [t('case.customer'), cu.name],
      [t('case.phone'), phone],
      [t('case.location'), where],
      [t('case.tenant'), c.tenant ? names.tenant(c.tenant) : null],
      [t('case.purchase'), purchase],
      [t('case.external_ref'), c.external_ref],
      [t('case.recorded_by'), c.recorded_by ? names.actor(c.recorded_by) : null],
      [t('case.followup'), c.followup ? tv('outcome', c.followup) : null],
    ]));
}

function classification(c, names) {
  const sec = h('section', { class: 'panel' }, h('h2', null, t('case.classification')));
  const cls = c.classification;
  if (!cls) { sec.append(h('p', { class: 'muted', role: 'status' }, t('case.notyet'))); return sec; }
  const kinds = { type: 'type', category: 'category', urgency: 'urgency', validity: 'validity' };
  const body = h('tbody');
  for (const [f, kind] of Object.entries(kinds)) {
    const x = cls[f] || {};
    body.append(h('tr', null, h('th', { scope: 'row' }, t(`case.cls.${f}`)), h('td', null, tv(kind, x.value ?? c[f])),
      h('td', null, h('code', null, x.rule || t('common.dash'))), h('td', null, matched(x.matched))));
  }
  sec.append(h('table', { class: 'compact', id: 'case-classification' },
    h('thead', null, h('tr', null, ...['field', 'value', 'rule', 'matched'].map((k) => h('th', { scope: 'col' }, t(`case.cls.${k}`))))),
    body));
  const routed = (c.history || []).find((e) => e.event === 'routed');
  const repeat = c.repeat_of || routed?.repeat_of;
  sec.append(h('h2', null, t('case.assignment')), dl([
    [t('case.department'), c.department ? names.dept(c.department) : null],
    [t('case.owner'), c.owner ? names.staff(c.owner) : null],
    [t('case.first_ask'), c.first_ask ? names.staff(c.first_ask) : null],
    [t('case.repeat_of'), repeat ? repeatLink(repeat) : null],
  ]));
  return sec;
}

// The earlier case, by its number once read (the record links it by case id).
function repeatLink(id) {
  const a = h('a', { href: `#/case/${encodeURIComponent(id)}`, id: 'case-repeat' }, id);
  get(`/v1/cases/${encodeURIComponent(id)}`).then((r) => { if (r.case_no) a.textContent = r.case_no; }).catch(() => {});
  return a;
}

// What matched: a keyword, or for a regular-expression rule its pattern (shortened; whole on hover).
function matched(m) {
  if (!m) return t('common.dash');
  if ([...m].length <= 24) return m;
  return h('code', { title: m, class: 'pattern' }, `${[...m].slice(0, 22).join('')}…`);
}

function clocks(c) {
  const sec = h('section', { class: 'panel' }, h('h2', null, t('case.clocks')));
  const planned = c.clocks || [];
  const state = c.clock_state || {};
  const kinds = [...planned.map((k) => k.kind), ...Object.keys(state).filter((k) => !planned.some((p) => p.kind === k))];
  if (!kinds.length) { sec.append(h('p', { class: 'muted' }, t('common.none'))); return sec; }
  const body = h('tbody');
  for (const kind of kinds) {
    const plan = planned.find((p) => p.kind === kind) || {};
    // clock_state.<clock>: the deadline worker's marks (older gateways: flat "due:<clock>" fields)
    const cs = state[kind] || {};
    const flat = (mark) => c[`${mark}:${kind}`];
    const running = cs.due_ms ?? (flat('due') ? Number(flat('due')) : null);
    const breached = !!(cs.breached_at || flat('breached'));
    const level = cs.level ?? flat('level');
    const stopped = cs.stopped_at || flat('stopped');
    let st;
    if (running) st = clockChip(kind, running, plan.duration_ms, breached, level);
    else if (stopped) {
      st = h('span', { class: breached ? 'clock clock-late' : 'clock clock-done' },
        t('case.clock.stopped'), breached ? ` · ${t('clock.breached')}` : '',
        cs.stopped_at ? ` · ${when(cs.stopped_at)}` : '');
    } else st = h('span', { class: 'muted' }, t('case.clock.waiting'));
    const due = running ? (cs.due ? when(cs.due) : localTime(running, c)) : (plan.due ? when(plan.due) : t('common.dash'));
    body.append(h('tr', { 'data-clock': kind, 'data-state': running ? 'running' : stopped ? 'stopped' : 'waiting' },
      h('th', { scope: 'row' }, tv('clock', kind)),
      h('td', null, plan.duration_ms ? duration(plan.duration_ms / 1000) : t('common.dash'),
        plan.working_time ? ` (${t('case.clock.working')})` : ''),
      h('td', { class: 'nowrap' }, due),
      h('td', null, st)));
  }
  sec.append(h('table', { class: 'compact', id: 'case-clocks' },
    h('thead', null, h('tr', null, ...['kind', 'duration', 'due', 'state'].map((k) => h('th', { scope: 'col' }, t(`case.clock.${k}`))))),
    body));
  return sec;
}

// A due time the record has only in ms, in the site's zone.
function localTime(ms, c) {
  const tz = siteOf(c.site).timezone;
  try {
    const f = new Intl.DateTimeFormat('sv-SE', { timeZone: tz || undefined, year: 'numeric', month: '2-digit',
      day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
    return f.format(new Date(ms));
  } catch {
    return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  }
}

function history(c, names) {
  const body = h('tbody', { id: 'case-history' });
  for (const e of c.history || []) {
    const what = [tv('event', e.event)];
    if (e.clock) what.push(` · ${tv('clock', e.clock)}`);
    if (e.outcome) what.push(` · ${tv('outcome', e.outcome)}`);
    const detail = [];
    if (e.reply) detail.push(h('div', { class: 'h-reply' }, e.reply));
    if (e.note) detail.push(h('div', { class: 'h-note' }, e.note));
    if (e.to_staff) detail.push(h('div', null, t('case.h.to', { to: names.staff(e.to_staff) })));
    if (e.to_department) detail.push(h('div', null, t('case.h.to', { to: names.dept(e.to_department) })));
    if (e.event === 'routed' && e.owner) detail.push(h('div', null, t('case.h.owner', { who: names.staff(e.owner) })));
    if (e.event === 'submitted' && e.channel) detail.push(h('div', null, tv('channel', e.channel)));
    if (e.event === 'escalated') {
      if (e.level !== undefined) detail.push(h('div', null, t('case.h.level', { n: e.level })));
      if (e.notified?.length) detail.push(h('div', null, t('case.h.notified', { who: list(e.notified.map(names.staff)) })));
    }
    const actor = e.actor || e.recorded_by;
    body.append(h('tr', { 'data-event': e.event },
      h('td', { class: 'nowrap' }, when(e.at, true)),
      h('td', null, what),
      h('td', null, actor ? names.actor(actor, e.actor_kind) : (e.event === 'routed' || e.event === 'escalated' ? tv('actor_kind', 'system') : t('common.dash'))),
      h('td', null, detail.length ? detail : t('common.dash'))));
  }
  return h('section', { class: 'panel' }, h('h2', null, t('case.history')),
    h('table', { class: 'compact history' },
      h('thead', null, h('tr', null, ...['when', 'what', 'who', 'detail'].map((k) => h('th', { scope: 'col' }, t(`case.h.${k}`))))),
      body));
}
