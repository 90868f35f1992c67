// The usage view: what the conversation cost against what a stateless client,
// one that resends the whole history every turn, would have paid; and the
// server's ledger for every conversation of this tenant when it keeps one.

import { money, percent, tokens, cacheReadShare, inputTokens } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Sums the answers of a conversation. */
export function summarize(events) {
  const answers = events.filter((e) => e.kind === 'assistant');
  const s = { answers, cost: 0, naive: 0, hasNaive: false, read: 0, input: 0, output: 0 };
  for (const e of answers) {
    s.cost += e.cost_usd ?? 0;
    if (typeof e.naive_cost_usd === 'number') {
      s.naive += e.naive_cost_usd;
      s.hasNaive = true;
    }
    s.read += e.usage?.cache_read_tokens ?? 0;
    s.input += inputTokens(e.usage);
    s.output += e.usage?.output_tokens ?? 0;
  }
  return s;
}

function card(label, value, sub, highlight = false) {
  const c = el('div', highlight ? 'card highlight' : 'card');
  c.append(el('div', 'label', label), el('div', 'value', value));
  if (sub) c.append(el('div', 'sub', sub));
  return c;
}

function cards(cost, naive, hasNaive, readShare, readSub) {
  const row = el('div', 'cards');
  const saved = naive - cost;
  row.append(
    card('Cost', money(cost), 'at the server\'s prices'),
    card('Stateless client', hasNaive ? money(naive) : '—',
      hasNaive ? 'resending the whole history' : 'not reported by this server'),
    card('Saved', hasNaive ? money(saved) : '—',
      hasNaive && naive > 0 ? `${percent(saved / naive)} less` : '', hasNaive && saved > 0),
    card('Cache read', percent(readShare), readSub),
  );
  return row;
}

/** Renders the usage view of a conversation's events into root. */
export function renderConversation(root, events, title) {
  const s = summarize(events);
  root.replaceChildren();
  root.append(el('h2', '', 'This conversation'),
    el('p', 'lead', title ? `“${title}”, ${s.answers.length} answers` : 'No conversation open'));
  root.append(cards(s.cost, s.naive, s.hasNaive, s.input ? s.read / s.input : NaN,
    `${tokens(s.read)} of ${tokens(s.input)} input tokens`));

  const panel = el('div', 'panel');
  const head = el('div', 'panel-head');
  const legend = el('div', 'legend');
  legend.append(legendItem('stated', 'stated'));
  if (s.hasNaive) legend.append(legendItem('naive', 'stateless client'));
  head.append(el('h3', '', 'Cumulative cost by answer'), legend);
  panel.append(head);
  root.append(panel);
  const width = Math.max(300, panel.clientWidth - 32);
  let stated = 0;
  let naive = 0;
  const points = s.answers.map((e, i) => {
    stated += e.cost_usd ?? 0;
    naive += e.naive_cost_usd ?? 0;
    return { x: i + 1, stated, naive };
  });
  panel.append(lineChart(points, s.hasNaive, width));
  if (s.answers.length) root.append(turnsTable(s.answers, s.hasNaive));
}

function legendItem(cls, text) {
  const l = el('span', cls);
  l.append(el('i'), text);
  return l;
}

function turnsTable(answers, hasNaive) {
  const wrap = el('div', 'panel table-wrap');
  const t = el('table', 'turns');
  const head = ['#', 'Model', 'Input', 'Cache read', 'Output', 'Cost'];
  if (hasNaive) head.push('Stateless');
  const tr = el('tr');
  for (const h of head) tr.append(el('th', '', h));
  t.append(el('thead'));
  t.tHead.append(tr);
  const body = el('tbody');
  answers.forEach((e, i) => {
    const r = el('tr');
    const cells = [String(i + 1), e.model ?? '', tokens(inputTokens(e.usage)),
      percent(cacheReadShare(e.usage)), tokens(e.usage?.output_tokens ?? 0), money(e.cost_usd)];
    if (hasNaive) cells.push(money(e.naive_cost_usd));
    for (const c of cells) r.append(el('td', '', c));
    body.append(r);
  });
  t.append(body);
  wrap.append(t);
  return wrap;
}

// scale returns a round top for an axis that must reach v, and its tick step:
// the step is 1, 2 or 5 times a power of ten, and there are at most 5 ticks.
function scale(v) {
  if (!(v > 0)) return { top: 1e-4, step: 2.5e-5 };
  const p = 10 ** Math.floor(Math.log10(v / 4));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => v / s <= 5);
  return { top: step * Math.ceil(v / step - 1e-9), step };
}

function frame(width, height, pad, y, xLabels) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`,
    width, height, role: 'img' });
  const grid = svg('g', { class: 'grid' });
  const axis = svg('g', { class: 'axis' });
  const h = height - pad.top - pad.bottom;
  const ticks = Math.round(y.top / y.step);
  for (let i = 0; i <= ticks; i++) {
    const at = pad.top + h - (h * i) / ticks;
    grid.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: at, y2: at }));
    axis.append(svg('text', { x: pad.left - 8, y: at + 4, 'text-anchor': 'end' },
      money(Number((y.step * i).toPrecision(6)))));
  }
  for (const [x, label] of xLabels) {
    axis.append(svg('text', { x, y: height - 8, 'text-anchor': 'middle' }, label));
  }
  root.append(grid, axis);
  return root;
}

/** A line chart of cumulative cost (and the stateless client's) per answer. */
export function lineChart(points, withNaive, width, height = 260) {
  const pad = { top: 12, right: 16, bottom: 28, left: 72 };
  const y = scale(Math.max(0, ...points.map((p) => Math.max(p.stated,
    withNaive ? p.naive : 0))));
  const yMax = y.top;
  const n = Math.max(points.length, 2);
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const X = (x) => pad.left + ((x - 1) / (n - 1)) * w;
  const Y = (v) => pad.top + h - (v / yMax) * h;
  const step = Math.max(1, Math.ceil(points.length / 10));
  const labels = points.filter((p) => (p.x - 1) % step === 0).map((p) => [X(p.x), String(p.x)]);
  const root = frame(width, height, pad, y, labels);
  if (!points.length) {
    root.append(svg('text', { class: 'empty-text', x: width / 2, y: height / 2,
      'text-anchor': 'middle' }, 'No answers yet'));
    return root;
  }
  const path = (key) => points.map((p, i) => `${i ? 'L' : 'M'}${X(p.x)},${Y(p[key])}`).join('');
  const base = `L${X(points[points.length - 1].x)},${Y(0)}L${X(1)},${Y(0)}Z`;
  root.append(svg('path', { class: 'area-stated', d: path('stated') + base }));
  if (withNaive) root.append(svg('path', { class: 'line-naive', d: path('naive') }));
  root.append(svg('path', { class: 'line-stated', d: path('stated') }));
  const last = points[points.length - 1];
  root.append(svg('circle', { class: 'dot-stated', cx: X(last.x), cy: Y(last.stated), r: 4 }));
  if (withNaive) {
    root.append(svg('circle', { class: 'dot-naive', cx: X(last.x), cy: Y(last.naive), r: 4 }));
  }
  return root;
}

/** A bar chart of cost (and the stateless client's) per group, such as a day. */
export function barChart(groups, width, height = 220) {
  const pad = { top: 12, right: 16, bottom: 28, left: 72 };
  const y = scale(Math.max(0, ...groups.map((g) => Math.max(g.cost, g.naive))));
  const yMax = y.top;
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const slot = w / Math.max(groups.length, 1);
  const bar = Math.min(22, slot / 3);
  const Y = (v) => pad.top + h - (v / yMax) * h;
  const step = Math.max(1, Math.ceil(groups.length / 8));
  const labels = groups.map((g, i) => [pad.left + slot * (i + 0.5), g.label])
    .filter((_, i) => i % step === 0);
  const root = frame(width, height, pad, y, labels);
  groups.forEach((g, i) => {
    const cx = pad.left + slot * (i + 0.5);
    root.append(svg('rect', { class: 'bar-naive', x: cx - bar - 1, y: Y(g.naive), width: bar,
      height: Math.max(0, Y(0) - Y(g.naive)), rx: 3 }));
    root.append(svg('rect', { class: 'bar-stated', x: cx + 1, y: Y(g.cost), width: bar,
      height: Math.max(0, Y(0) - Y(g.cost)), rx: 3 }));
  });
  return root;
}

/**
 * Renders the tenant's ledger (GET /v1/usage grouped by day) into root, or a
 * line saying why there is none.
 */
export async function renderLedger(root, headers) {
  root.replaceChildren(el('h2', '', 'All conversations'));
  let report;
  try {
    const res = await fetch('/v1/usage?group_by=day', { headers });
    if (!res.ok) throw new Error(res.status === 401 ? 'an API key is needed (Settings)'
      : `the server keeps no ledger here (HTTP ${res.status})`);
    report = await res.json();
  } catch (err) {
    root.append(el('p', 'lead', `No ledger: ${err.message}.`));
    return;
  }
  const t = report.total ?? {};
  root.append(el('p', 'lead', `${tokens(t.calls ?? 0)} provider calls booked by the server`));
  root.append(cards(t.cost_usd ?? 0, t.naive_cost_usd ?? 0, true, t.cache_read_share ?? NaN,
    `${tokens(t.cache_read_tokens ?? 0)} tokens read from cache`));
  const groups = (report.groups ?? []).map((g) => ({
    label: String(g.key).slice(5), cost: g.cost_usd ?? 0, naive: g.naive_cost_usd ?? 0,
  }));
  if (!groups.length) return;
  const panel = el('div', 'panel');
  const head = el('div', 'panel-head');
  const legend = el('div', 'legend');
  legend.append(legendItem('stated', 'stated'), legendItem('naive', 'stateless client'));
  head.append(el('h3', '', 'Cost by day (UTC)'), legend);
  panel.append(head);
  root.append(panel);
  panel.append(barChart(groups.slice(-31), Math.max(300, panel.clientWidth - 32)));
}
