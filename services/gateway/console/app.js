// The console's frame: sign-in, the header (who, site, language, sign out), the navigation
// and the hash routes. Each screen is a module with render(ctx) that may return a cleanup.
import { h, replace, options, field } from './dom.js';
import { t, getLang, setLang, nameOf, list } from './i18n.js';
import { get, getToken, setToken, whenUnauthorized, forgetDirectories } from './api.js';
import { state, signedIn, signedOut, setSite } from './state.js';
import { errorBox, loading } from './ui.js';
import * as cases from './cases.js';
import * as kase from './case.js';
import * as intake from './intake.js';
import * as callbacks from './callbacks.js';
import * as today from './today.js';
import * as reports from './reports.js';

const main = document.getElementById('main');
const top = document.getElementById('top');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const screens = {
  cases: { view: cases, nav: 'nav.cases' },
  intake: { view: intake, nav: 'nav.intake' },
  callbacks: { view: callbacks, nav: 'nav.callbacks', when: (me) => me.callback_sites.length > 0 },
  today: { view: today, nav: 'nav.today' },
  reports: { view: reports, nav: 'nav.reports' },
  case: { view: kase },
};

let cleanup = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || 'cases', arg: parts[1] || null, params: new URLSearchParams(q || '') };
}

function stop() {
  generation += 1;
  if (cleanup) { try { cleanup(); } catch { /* a screen going away */ } }
  cleanup = null;
}

async function route() {
  stop();
  if (!state.me) { showSignIn(); return; }
  const r = parseHash();
  const screen = screens[r.name];
  drawNav(r.name);
  const mine = generation;
  if (!screen || (screen.when && !screen.when(state.me))) {
    replace(main, h('section', { class: 'panel' }, h('p', null, t('error.page'))));
    return;
  }
  document.title = `${screen.nav ? t(screen.nav) : t('case.title')} · casewire`;
  replace(main, loading());
  const ctx = {
    main, arg: r.arg, params: r.params, me: state.me, site: state.site,
    alive: () => mine === generation,
    go: (hash) => { location.hash = hash; },
  };
  try {
    const c = await screen.view.render(ctx);
    if (mine === generation) cleanup = typeof c === 'function' ? c : null;
    else if (typeof c === 'function') c();
  } catch (e) {
    if (mine === generation) replace(main, errorBox(e));
  }
}

function drawNav(current) {
  replace(nav, ...Object.entries(screens)
    .filter(([, s]) => s.nav && (!s.when || s.when(state.me)))
    .map(([name, s]) => h('a', { href: `#/${name}`, class: 'nav-link', 'aria-current': name === current ? 'page' : null,
      'data-screen': name }, t(s.nav))));
}

function drawHeader() {
  const me = state.me;
  const roles = list(me.roles.map(nameOf));
  const sites = me.site ? nameOf(me.sites.find((s) => s.id === me.site) || { name: me.site }) : t('who.group');
  const parts = [
    h('span', { class: 'who-name', id: 'who-name' }, me.name),
    h('span', { class: 'who-role' }, roles),
    h('span', { class: 'who-site' }, sites),
  ];
  if (me.sites.length > 1) {
    const sel = h('select', { id: 'site-switch', class: 'site-switch' },
      options(me.sites.map((s) => [s.id, nameOf(s)]), state.site));
    sel.addEventListener('change', () => { setSite(sel.value); route(); });
    parts.push(h('label', { for: 'site-switch', class: 'sr-only' }, t('site.switch')), sel);
  } else if (me.sites.length === 1 && !me.site) {
    parts.push(h('span', { class: 'who-site' }, nameOf(me.sites[0])));
  }
  const langBtn = h('button', { type: 'button', class: 'link-button', id: 'lang-switch', lang: getLang() === 'zh' ? 'en' : 'zh' },
    t('lang.switch'));
  langBtn.addEventListener('click', () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); drawHeader(); route(); });
  const out = h('button', { type: 'button', class: 'link-button', id: 'sign-out' }, t('signout'));
  out.addEventListener('click', () => signOut());
  replace(who, ...parts, langBtn, out);
  top.hidden = false;
}

function signOut(message) {
  stop();
  setToken(null);
  signedOut();
  forgetDirectories();
  showSignIn(message);
}

function showSignIn(message) {
  stop();
  top.hidden = true;
  document.title = `${t('signin.title')} · casewire`;
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false',
    required: true, class: 'wide' });
  const status = h('div', { id: 'signin-status', 'aria-live': 'polite' });
  if (message) status.append(h('p', { class: 'error', role: 'alert' }, message));
  const submit = h('button', { type: 'submit', class: 'primary', id: 'signin-submit' }, t('signin.submit'));
  const langBtn = h('button', { type: 'button', class: 'link-button', id: 'lang-switch' }, t('lang.switch'));
  langBtn.addEventListener('click', () => { setLang(getLang() === 'zh' ? 'en' : 'zh'); showSignIn(message); });
  const form = h('form', { class: 'panel signin', id: 'signin', novalidate: true },
    h('h1', null, t('signin.title')),
    h('p', null, t('signin.lead')),
    field(t('signin.token'), input),
    submit, status,
    h('p', { class: 'signin-lang' }, langBtn));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    replace(status);
    if (!token) { status.append(h('p', { class: 'error', role: 'alert' }, t('signin.empty'))); return; }
    submit.disabled = true;
    submit.textContent = t('signin.busy');
    try {
      const me = await get('/v1/me', { token });
      setToken(token);
      signedIn(me);
      drawHeader();
      if (!location.hash || location.hash === '#/' || location.hash.startsWith('#/signin')) location.hash = '#/cases';
      else route();
    } catch (e) {
      submit.disabled = false;
      submit.textContent = t('signin.submit');
      replace(status, e.status === 401 ? h('p', { class: 'error', role: 'alert', id: 'signin-error' }, t('signin.bad'))
        : errorBox(e));
    }
  });
  replace(main, form);
  input.focus();
}

whenUnauthorized(() => signOut(t('signin.expired')));
window.addEventListener('hashchange', () => route());

async function boot() {
  if (!getToken()) { showSignIn(); return; }
  replace(main, loading());
  try {
    signedIn(await get('/v1/me'));
    drawHeader();
    route();
  } catch (e) {
    if (e.status === 401) return; // whenUnauthorized showed the sign-in
    const retry = h('button', { type: 'button' }, t('common.retry'));
    retry.addEventListener('click', boot);
    replace(main, h('section', { class: 'panel' }, errorBox(e), retry));
  }
}
boot();
