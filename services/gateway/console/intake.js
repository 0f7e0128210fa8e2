// #/intake: a case taken at the desk or on the phone (POST /v1/cases). One Idempotency-Key per
// form fill: a double click or a retry of the same form returns the same case.
import { h, replace, options, field, setFieldError } from './dom.js';
import { t, tv, nameOf, when } from './i18n.js';
import { post, newKey, directory } from './api.js';
import { errorBox } from './ui.js';

const CHANNELS = ['service_desk', 'phone', 'email', 'letter', 'regulator', 'social_media'];
const PHONE_REQUIRED = ['service_desk', 'phone'];

export async function render(ctx) {
  const me = ctx.me;
  const c = {}; // controls by the API's field path
  c.site = h('select', { id: 'in-site' }, options(me.sites.map((s) => [s.id, nameOf(s)]), ctx.site));
  const callCentre = me.roles.some((r) => r.id.includes('callcenter'));
  c.channel = h('select', { id: 'in-channel' },
    options(CHANNELS.map((ch) => [ch, tv('channel', ch)]), callCentre ? 'phone' : 'service_desk'));
  c.text = h('textarea', { id: 'in-text', rows: 4, maxlength: 4000, required: true });
  c['customer.name'] = h('input', { id: 'in-name', type: 'text', maxlength: 64, autocomplete: 'off' });
  c['customer.phone'] = h('input', { id: 'in-phone', type: 'tel', maxlength: 32, autocomplete: 'off', inputmode: 'tel' });
  c['location.floor'] = h('input', { id: 'in-floor', type: 'text', maxlength: 32, class: 'short' });
  c['location.unit'] = h('input', { id: 'in-unit', type: 'text', maxlength: 32, class: 'short' });
  c['location.tenant'] = h('select', { id: 'in-tenant' });
  c.request = h('input', { id: 'in-request', type: 'text', maxlength: 1000 });
  c.external_ref = h('input', { id: 'in-external-ref', type: 'text', maxlength: 64 });
  c['purchase.date'] = h('input', { id: 'in-purchase-date', type: 'date' });
  c['purchase.amount'] = h('input', { id: 'in-purchase-amount', type: 'text', inputmode: 'decimal', class: 'short' });
  c['purchase.receipt_no'] = h('input', { id: 'in-purchase-receipt', type: 'text', maxlength: 64 });

  let tenants = [];
  async function loadTenants() {
    replace(c['location.tenant'], h('option', { value: '' }, t('intake.tenant.none')));
    try { tenants = (await directory(c.site.value)).tenants; } catch { tenants = []; }
    c['location.tenant'].append(...tenants.map((x) =>
      h('option', { value: x.id }, `${nameOf(x)}${x.floor ? ` · ${x.floor}` : ''}${x.unit ? ` ${x.unit}` : ''}`)));
  }
  c.site.addEventListener('change', loadTenants);
  c['location.tenant'].addEventListener('change', () => {
    const x = tenants.find((y) => y.id === c['location.tenant'].value);
    if (x && !c['location.floor'].value && x.floor) c['location.floor'].value = x.floor;
    if (x && !c['location.unit'].value && x.unit) c['location.unit'].value = x.unit;
  });
  await loadTenants();
  if (!ctx.alive()) return null;

  const phoneHint = h('span');
  const extField = field(t('intake.external_ref'), c.external_ref, t('intake.external_ref.hint'));
  function channelChanged() {
    const req = PHONE_REQUIRED.includes(c.channel.value);
    phoneHint.textContent = req ? t('common.required') : t('common.optional');
    c['customer.phone'].required = req;
    extField.hidden = c.channel.value !== 'regulator' && !c.external_ref.value;
  }
  c.channel.addEventListener('change', channelChanged);

  const submit = h('button', { type: 'submit', class: 'primary big', id: 'in-submit' }, t('intake.submit'));
  const status = h('div', { id: 'in-status', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel intake', id: 'intake-form', novalidate: true },
    h('h1', null, t('intake.title')),
    h('div', { class: 'row' }, field(t('intake.site'), c.site), field(t('intake.channel'), c.channel)),
    field(t('intake.text'), c.text, t('intake.text.hint')),
    h('div', { class: 'row' },
      field(t('intake.name'), c['customer.name']),
      field([t('intake.phone'), phoneHint], c['customer.phone'], t('intake.phone.hint'))),
    h('div', { class: 'row' },
      field(t('intake.tenant'), c['location.tenant']),
      field(t('intake.floor'), c['location.floor']),
      field(t('intake.unit'), c['location.unit'])),
    field(t('intake.request'), c.request, t('intake.request.hint')),
    extField,
    h('details', { class: 'purchase' }, h('summary', null, t('intake.purchase'), t('common.optional')),
      h('div', { class: 'row' },
        field(t('intake.purchase.date'), c['purchase.date']),
        field(t('intake.purchase.amount'), c['purchase.amount']),
        field(t('intake.purchase.receipt'), c['purchase.receipt_no']))),
    h('div', { class: 'buttons' }, submit),
    status);
  channelChanged();

  // The key belongs to this form fill and this body: the same body again (a double click, a
  // retry) reuses it; a corrected body after an error gets a new one.
  let last = null;

  function body() {
    const v = (k) => c[k].value.trim();
    const b = { site: c.site.value, channel: c.channel.value, text: v('text') };
    const customer = {};
    if (v('customer.name')) customer.name = v('customer.name');
    if (v('customer.phone')) customer.phone = v('customer.phone');
    if (Object.keys(customer).length) b.customer = customer;
    const location = {};
    for (const k of ['floor', 'unit', 'tenant']) if (v(`location.${k}`)) location[k] = v(`location.${k}`);
    if (Object.keys(location).length) b.location = location;
    const purchase = {};
    for (const k of ['date', 'amount', 'receipt_no']) if (v(`purchase.${k}`)) purchase[k] = v(`purchase.${k}`);
    if (Object.keys(purchase).length) b.purchase = purchase;
    if (v('request')) b.request = v('request');
    if (v('external_ref')) b.external_ref = v('external_ref');
    return b;
  }

  let sending = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (sending) return;
    for (const ctl of Object.values(c)) setFieldError(ctl, null);
    replace(status);
    const b = body();
    let bad = false;
    if (!b.text) { setFieldError(c.text, t('intake.need.text')); bad = true; }
    if (PHONE_REQUIRED.includes(b.channel) && !b.customer?.phone) {
      setFieldError(c['customer.phone'], t('intake.need.phone')); bad = true;
    }
    if (bad) { replace(status, h('p', { class: 'error', role: 'alert' }, t('intake.check'))); return; }
    const json = JSON.stringify(b);
    if (!last || last.json !== json) last = { json, key: newKey() };
    sending = true;
    submit.disabled = true;
    submit.textContent = t('intake.busy');
    try {
      const ans = await post('/v1/cases', b, last.key);
      if (ctx.alive()) done(ans);
    } catch (e) {
      if (!ctx.alive()) return;
      const ctl = e.field && c[e.field];
      if (e.status === 422 && ctl) {
        setFieldError(ctl, e.message);
        if (ctl.closest('details')) ctl.closest('details').open = true;
        if (ctl === c.external_ref) extField.hidden = false;
        ctl.focus();
        replace(status, h('p', { class: 'error', role: 'alert' }, t('intake.check')));
      } else {
        replace(status, errorBox(e));
      }
    } finally {
      sending = false;
      submit.disabled = false;
      submit.textContent = t('intake.submit');
    }
  });

  function done(ans) {
    const again = h('button', { type: 'button', id: 'in-again' }, t('intake.done.new'));
    again.addEventListener('click', () => render(ctx));
    const open = h('a', { href: `#/case/${encodeURIComponent(ans.case_no)}`, class: 'button primary', id: 'in-open' },
      t('intake.done.open'));
    replace(ctx.main, h('section', { class: 'panel done', id: 'intake-done', role: 'status' },
      h('h1', null, t('intake.done')),
      h('p', null, t('intake.done.tell')),
      h('p', { class: 'case-no-huge', id: 'intake-case-no' }, ans.case_no),
      h('p', { class: 'reply-by' }, t('intake.done.replyby'), ' ', h('strong', { id: 'intake-reply-by' }, when(ans.reply_by))),
      h('div', { class: 'buttons' }, open, again)));
    open.focus();
  }

  replace(ctx.main, form);
  c.text.focus();
  return null;
}
