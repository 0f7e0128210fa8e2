// #/callbacks: the call centre's follow-up queue (GET /v1/callbacks), most urgent first.
// "Claim next" takes the first task nobody holds (POST /v1/callbacks/{id}/claim; 409: the
// next one), shows the case and a call script, and records the outcome as case events.
import { h, replace, options, field } from './dom.js';
import { t, tv, nameOf, when } from './i18n.js';
import { get, post, query, newKey, serverNow } from './api.js';
import { siteOf } from './state.js';
import { errorBox, badge, namesFor, clockChip, tickClocks, notice } from './ui.js';

// A task called before without an answer (unreachable) comes back at its due time: until
// then it waits (the queue lists it, most urgent first, but nobody should call again yet).
const later = (k) => (k.attempts || 0) > 0 && k.due_ms > serverNow();

export async function render(ctx) {
  const me = ctx.me;
  const sites = me.callback_sites;
  let site = sites.includes(ctx.site) ? ctx.site : sites[0];
  let tasks = [];
  let names = await namesFor(site);
  if (!ctx.alive()) return null;

  const siteSel = h('select', { id: 'cb-site' }, options(sites.map((s) => [s, nameOf(siteOf(s))]), site));
  siteSel.addEventListener('change', async () => {
    site = siteSel.value;
    names = await namesFor(site);
    replace(call);
    load();
  });
  const claimBtn = h('button', { type: 'button', class: 'primary big', id: 'cb-claim' }, t('cb.claim'));
  const summary = h('p', { class: 'summary', id: 'cb-summary', 'aria-live': 'polite' });
  const status = h('div', { id: 'cb-status', 'aria-live': 'polite' });
  const call = h('div', { id: 'cb-call-slot' });
  const tbody = h('tbody', { id: 'cb-body' });
  const table = h('table', { class: 'cases', id: 'cb-table' },
    h('thead', null, h('tr', null, ...['no', 'urgency', 'due', 'attempts', 'claimed'].map((k) =>
      h('th', { scope: 'col' }, t(`cb.col.${k}`))))),
    tbody);
  replace(ctx.main, h('div', { class: 'callbacks' },
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h1', null, t('cb.title')), h('span', { class: 'muted' }, t('cb.auto'))),
      h('div', { class: 'row' }, sites.length > 1 ? field(t('cb.site'), siteSel) : null,
        h('div', { class: 'field' }, claimBtn)),
      status),
    call,
    h('section', { class: 'panel' }, summary, h('div', { class: 'table-wrap' }, table))));

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const ans = await get(`/v1/callbacks${query({ site })}`);
      if (!ctx.alive()) return;
      tasks = ans.tasks || [];
      replace(tbody, ...tasks.map((k) => h('tr', { class: k.claimed_by === me.staff_id ? 'mine' : later(k) ? 'later' : null,
        'data-case': k.case_no },
        h('td', null, h('a', { href: `#/case/${encodeURIComponent(k.case_no)}` }, k.case_no)),
        h('td', null, badge('urgency', k.urgency)),
        h('td', null, later(k) ? h('span', { class: 'muted' }, t('cb.later', { time: when(k.due) }))
          : [when(k.due), ' ', clockChip('followup', k.due_ms, 0, false)]),
        h('td', { class: 'num' }, String(k.attempts ?? 0)),
        h('td', null, k.claimed_by ? [names.staff(k.claimed_by), ' ', h('span', { class: 'muted' },
          t('cb.until', { time: when(k.claimed_until) }))] : t('common.dash')))));
      if (!tasks.length) tbody.append(h('tr', null, h('td', { colspan: 5, class: 'empty' }, t('cb.empty'))));
      replace(summary, t('cb.count', { n: tasks.length }), ' · ',
        t('common.updated', { time: new Date().toLocaleTimeString(undefined, { hour12: false }) }));
    } catch (e) {
      if (ctx.alive()) replace(status, errorBox(e));
    } finally {
      busy = false;
    }
  }

  claimBtn.addEventListener('click', async () => {
    claimBtn.disabled = true;
    claimBtn.textContent = t('cb.claiming');
    replace(status);
    try {
      await load();
      const free = tasks.filter((k) => k.claimed_by === me.staff_id || (!k.claimed_by && !later(k)));
      if (!tasks.length) { replace(status, notice(t('cb.empty'), 'info')); return; }
      for (const k of free) {
        try {
          const claim = await post(`/v1/callbacks/${encodeURIComponent(k.task_id)}/claim`);
          if (!ctx.alive()) return;
          await showCall(claim);
          load();
          return;
        } catch (e) {
          if (e.status === 409) continue; // someone else has it, or it is over: the next one
          throw e;
        }
      }
      replace(status, notice(t('cb.none_free'), 'info'));
    } catch (e) {
      if (ctx.alive()) replace(status, errorBox(e));
    } finally {
      claimBtn.disabled = false;
      claimBtn.textContent = t('cb.claim');
    }
  });

  async function showCall(claim) {
    const c = await get(`/v1/cases/${encodeURIComponent(claim.case_id)}`);
    if (!ctx.alive()) return;
    const hist = c.history || [];
    const results = hist.filter((e) => (e.event === 'resolve' && e.note) || e.event === 'reply')
      .map((e) => e.reply || e.note);
    const cu = c.customer || {};
    const result = results.length ? results[results.length - 1] : t('cb.noresolution');
    const note = h('textarea', { id: 'cb-note', rows: 2, maxlength: 4000 });
    const out = h('div', { id: 'cb-out', 'aria-live': 'polite' });
    const buttons = [];
    let followedUp = false;
    const button = (outcome, cls) => {
      const b = h('button', { type: 'button', class: cls, id: `cb-${outcome.replace('_', '-')}` }, t(`cb.${outcome}`));
      b.addEventListener('click', () => record(outcome));
      buttons.push(b);
      return b;
    };
    const release = h('button', { type: 'button', class: 'link-button', id: 'cb-release' }, t('cb.release'));
    release.addEventListener('click', () => replace(call));

    async function record(outcome) {
      for (const b of buttons) b.disabled = true;
      replace(out);
      const path = `/v1/cases/${encodeURIComponent(c.case_id)}/events`;
      try {
        if (!followedUp) {
          const body = { action: 'followup', outcome };
          if (note.value.trim()) body.note = note.value.trim();
          await post(path, body, newKey());
          followedUp = true;
        }
        let closed = false;
        if (outcome === 'satisfied') {
          await post(path, { action: 'close' }, newKey());
          closed = true;
        }
        if (!ctx.alive()) return;
        replace(call, notice([t('cb.recorded', { case_no: c.case_no, outcome: tv('outcome', outcome) }),
          closed ? ` ${t('cb.closed')}` : ''], 'ok'));
        call.firstChild.id = 'cb-recorded';
        load();
      } catch (e) {
        for (const b of buttons) b.disabled = false;
        if (ctx.alive()) replace(out, errorBox(e));
      }
    }

    const vars = {
      site: nameOf(siteOf(c.site)), agent: me.name, date: when(c.received_at).slice(0, 10), case_no: c.case_no, result,
    };
    replace(call, h('section', { class: 'panel call', id: 'cb-call', 'data-case': c.case_no },
      h('h2', null, t('cb.mine'), ': ', h('a', { href: `#/case/${encodeURIComponent(c.case_no)}`, id: 'cb-case-no' }, c.case_no),
        ' ', badge('urgency', c.urgency), ' ', h('span', { class: 'muted' }, t('cb.until', { time: when(claim.claimed_until) }))),
      h('div', { class: 'call-grid' },
        h('dl', { class: 'facts' },
          h('dt', null, t('cb.customer')), h('dd', { id: 'cb-customer' }, cu.name || t('common.dash')),
          h('dt', null, t('cb.phone')), h('dd', null, cu.phone ? h('a', { href: `tel:${cu.phone}`, class: 'phone big', id: 'cb-phone' }, cu.phone) : t('common.dash')),
          h('dt', null, t('cb.what')), h('dd', { class: 'case-text' }, c.text || ''),
          h('dt', null, t('cb.resolution')), h('dd', { id: 'cb-resolution' },
            results.length ? results.map((r) => h('div', null, r)) : t('cb.noresolution'))),
        h('div', { class: 'script', id: 'cb-script' }, h('h3', null, t('cb.script')),
          h('ol', null, ['cb.script.1', results.length ? 'cb.script.2' : 'cb.script.2b', 'cb.script.3'].map((k) => h('li', null, t(k, vars)))))),
      field(t('cb.note'), note),
      h('div', { class: 'buttons' }, button('satisfied', 'primary'), button('not_satisfied', 'warn'),
        button('unreachable', null), release),
      out));
    call.querySelector('#cb-satisfied').focus();
  }

  await load();
  const refresh = setInterval(load, 5000);
  const tick = setInterval(() => tickClocks(tbody), 1000);
  return () => { clearInterval(refresh); clearInterval(tick); };
}
