// Who is signed in (GET /v1/me) and which of their sites the screens show.

const SITE = 'casewire.site';
export const state = { me: null, site: null };

export function signedIn(me) {
  state.me = me;
  let site = null;
  try { site = sessionStorage.getItem(SITE); } catch { /* none kept */ }
  const ids = me.sites.map((s) => s.id);
  state.site = ids.includes(site) ? site : (me.site && ids.includes(me.site) ? me.site : ids[0] || null);
}

export function setSite(id) {
  state.site = id;
  try { sessionStorage.setItem(SITE, id); } catch { /* only this page */ }
}

export function signedOut() {
  state.me = null;
  state.site = null;
  try { sessionStorage.removeItem(SITE); } catch { /* nothing kept */ }
}

export const can = (action) => !!state.me && state.me.actions.includes(action);
export const siteOf = (id) => state.me?.sites.find((s) => s.id === id) || { id, name: id };
