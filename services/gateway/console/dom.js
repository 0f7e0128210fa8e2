// Building the page: every value goes in as text, never as markup.
//   h('td', {class: 'num'}, 'text', otherNode, null)  -> <td class="num">text…</td>

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'style') throw new Error('no inline styles: use a class');
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'value') el.value = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// <option>s from [[value, label], ...]; the selected one is kept.
export function options(list, selected) {
  return list.map(([v, label]) => h('option', { value: v, selected: String(v) === String(selected ?? '') }, label));
}

let uid = 0;
export function nextId(prefix) { uid += 1; return `${prefix}-${uid}`; }

// A labelled field: <div class="field"><label for=…>…</label>control<p class="field-error"></p></div>
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  const err = h('p', { class: 'field-error', id: control.id + '-err', role: 'alert', hidden: true });
  control.setAttribute('aria-describedby', err.id);
  return h('div', { class: 'field' },
    h('label', { for: control.id }, label),
    control,
    hint ? h('p', { class: 'hint' }, hint) : null,
    err);
}

export function setFieldError(control, message) {
  const err = document.getElementById(control.id + '-err');
  if (!err) return;
  err.textContent = message || '';
  err.hidden = !message;
  control.classList.toggle('invalid', !!message);
  if (message) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
}
