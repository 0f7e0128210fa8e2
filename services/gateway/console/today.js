// #/today: today at a glance for the current site (GET /v1/reports/today), as big numbers.
import { h, replace } from './dom.js';
import { t, nameOf, percent, list } from './i18n.js';
import { get, query } from './api.js';
import { siteOf } from './state.js';
import { errorBox } from './ui.js';

export async function render(ctx) {
  const body = h('div', { id: 'today-body' });
  const head = h('p', { class: 'muted', id: 'today-date' });
  replace(ctx.main, h('section', { class: 'panel' }, h('h1', null, t('today.title')), head, body));

  async function load() {
    try {
      const r = await get(`/v1/reports/today${query({ site: ctx.site })}`);
      if (!ctx.alive()) return;
      replace(head, t('today.date', { date: r.date, sites: list(r.sites.map((s) => nameOf(siteOf(s)))) }));
      const fuClass = r.followup_rate === null || r.followup_rate >= 1 ? 'good' : 'bad';
      const tiles = [
        ['new', r.new], ['open', r.open], ['overdue', r.overdue, r.overdue > 0 ? 'bad' : null,
          r.overdue_is_lower_bound ? t('today.lower_bound') : ''],
        ['resolved', r.resolved], ['followed_up', r.followed_up], ['waiting', r.waiting],
        ['followup_rate', percent(r.followup_rate), fuClass], ['satisfaction', percent(r.satisfaction_rate)],
      ];
      replace(body, h('div', { class: 'tiles' }, ...tiles.map(([k, v, cls, extra]) =>
        h('div', { class: `tile ${cls || ''}`, 'data-key': k },
          h('div', { class: 'tile-value', id: `today-${k}` }, String(v ?? t('common.dash'))),
          h('div', { class: 'tile-label' }, t(`today.${k}`), extra || '')))));
    } catch (e) {
      if (ctx.alive()) replace(body, errorBox(e));
    }
  }
  await load();
  const refresh = setInterval(load, 30000);
  return () => clearInterval(refresh);
}
