// The gateway's API, with the staff token from this tab's session storage on every call.
// Errors come back as ApiError {status, code, message, field}; a 401 signs the person out.

const TOKEN = 'casewire.token';
let onUnauthorized = () => {};
let clockOffset = 0; // server time minus this machine's time, in ms

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN); } catch { return null; }
}
export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN, token); else sessionStorage.removeItem(TOKEN);
  } catch { /* storage refused: the token lives as long as the page */ }
}
export function whenUnauthorized(fn) { onUnauthorized = fn; }

// The gateway's clock, for the time left on deadlines.
export function serverNow() { return Date.now() + clockOffset; }
export function syncClock(nowMs) { if (Number.isFinite(nowMs)) clockOffset = nowMs - Date.now(); }

// A random key (a UUID v4); crypto.randomUUID needs a secure context, getRandomValues does not.
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function once(method, path, { body, key, token, accept } = {}) {
  const headers = { Accept: accept || 'application/json' };
  const tok = token ?? getToken();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network', '');
  }
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isFinite(date) && Math.abs(date - serverNow()) > 2000) clockOffset = date - Date.now();
  return res;
}

async function errorOf(res) {
  let e = null;
  try { e = (await res.json()).error; } catch { /* not JSON */ }
  return new ApiError(res.status, e?.code || `http_${res.status}`, e?.message || res.statusText, e?.field);
}

// request('GET', '/v1/me') -> parsed JSON. POSTs with a key are retried with the same key when
// the answer is lost or the gateway says to come back (503, 409 request_in_progress).
export async function request(method, path, opts = {}) {
  const tries = opts.key ? 4 : 1;
  for (let i = 1; ; i++) {
    let res;
    try {
      res = await once(method, path, opts);
    } catch (e) {
      if (i < tries) { await sleep(500 * i); continue; }
      throw e;
    }
    if (res.ok) return opts.raw ? res : res.json();
    const err = await errorOf(res);
    if (res.status === 401 && !opts.token) onUnauthorized(err);
    const again = res.status === 503 || (res.status === 409 && err.code === 'request_in_progress');
    if (again && i < tries) {
      const after = Number(res.headers.get('Retry-After')) || 1;
      await sleep(Math.min(after, 3) * 1000);
      continue;
    }
    throw err;
  }
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, key) => request('POST', path, { body, key });

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// The site's directory (departments, staff, tenants), kept for the page's life.
const directories = new Map();
export async function directory(site) {
  if (!site) return { departments: [], staff: [], tenants: [] };
  if (!directories.has(site)) {
    const p = get(`/v1/directory${query({ site })}`).catch((e) => { directories.delete(site); throw e; });
    directories.set(site, p);
  }
  return directories.get(site);
}
export function forgetDirectories() { directories.clear(); }
