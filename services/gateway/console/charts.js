// Small inline SVG charts, drawn here (no library): horizontal bars for counts, and bars per
// day for a week or a month. Text goes in as text nodes; colours come from style.css classes.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function svg(width, height, label, cls) {
  const el = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label,
    class: `chart ${cls || ''}`, preserveAspectRatio: 'xMinYMin meet' });
  el.append(s('title', {}, label));
  return el;
}

// Roughly how wide a label is at 12px: CJK characters are square, latin ones about half.
function textWidth(text) {
  let w = 0;
  for (const ch of String(text)) w += ch.charCodeAt(0) > 0x2e80 ? 12 : 6.6;
  return w;
}

// items: [{label, value}], biggest first; one bar a row.
export function barChart(items, label) {
  const rows = items.length || 1;
  const row = 20;
  const labelW = Math.min(170, Math.max(60, 12 + Math.max(0, ...items.map((i) => textWidth(i.label)))));
  const barW = 200;
  const width = labelW + barW + 40;
  const height = rows * row + 4;
  const max = Math.max(1, ...items.map((i) => i.value));
  const el = svg(width, height, label, 'bars');
  items.forEach((item, i) => {
    const y = i * row + 2;
    const w = Math.max(item.value > 0 ? 2 : 0, Math.round((item.value / max) * barW));
    el.append(
      s('text', { x: labelW - 6, y: y + row / 2 + 4, 'text-anchor': 'end', class: 'chart-label' }, item.label),
      s('rect', { x: labelW, y: y + 3, width: w, height: row - 6, rx: 2, class: `bar bar-${i % 6}` }),
      s('text', { x: labelW + w + 4, y: y + row / 2 + 4, class: 'chart-value' }, item.value));
  });
  return el;
}

// days: [{date: 'YYYY-MM-DD', received, resolved}]: two bars a day, received and resolved.
export function dayChart(days, label, legend) {
  const width = 640;
  const height = 150;
  const left = 28;
  const bottom = 20;
  const top = 16;
  const plotW = width - left - 4;
  const plotH = height - bottom - top;
  const max = Math.max(1, ...days.map((d) => Math.max(d.received || 0, d.resolved || 0)));
  const slot = plotW / Math.max(1, days.length);
  const bw = Math.max(1, Math.min(14, slot / 2 - 1));
  const el = svg(width, height, label, 'days');
  // axis and the top value
  el.append(s('line', { x1: left, y1: top + plotH, x2: width - 4, y2: top + plotH, class: 'axis' }),
    s('text', { x: left - 4, y: top + 4, 'text-anchor': 'end', class: 'chart-value' }, max),
    s('text', { x: left - 4, y: top + plotH, 'text-anchor': 'end', class: 'chart-value' }, 0));
  const every = days.length > 16 ? 2 : 1;
  days.forEach((d, i) => {
    const x = left + i * slot + slot / 2;
    const hr = Math.round(((d.received || 0) / max) * plotH);
    const hs = Math.round(((d.resolved || 0) / max) * plotH);
    el.append(
      s('rect', { x: x - bw - 0.5, y: top + plotH - hr, width: bw, height: hr, class: 'bar bar-0' }),
      s('rect', { x: x + 0.5, y: top + plotH - hs, width: bw, height: hs, class: 'bar bar-1' }));
    if (i % every === 0) {
      el.append(s('text', { x, y: height - 6, 'text-anchor': 'middle', class: 'chart-label' }, String(d.date).slice(8, 10)));
    }
  });
  // legend
  legend.forEach((name, i) => {
    const x = left + 8 + i * 90;
    el.append(s('rect', { x, y: 2, width: 10, height: 10, class: `bar bar-${i}` }),
      s('text', { x: x + 14, y: 11, class: 'chart-label' }, name));
  });
  return el;
}
