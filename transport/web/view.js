// The thread of a conversation in the DOM: one element per event, keyed by seq,
// so that an event or the answer in flight is never shown twice.

import { money, percent, tokens, cacheReadShare, inputTokens, duration } from './format.js';

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const STATUS_TEXT = {
  incomplete: 'Cut short',
  aborted: 'Stopped',
  failed: 'Failed',
};

// Notes for events that are neither turns nor answers.
const NOTES = {
  rollup: 'Earlier turns were summarized to keep the prompt small',
  pin: 'A turn was pinned',
  paused: 'The session was paused by the runaway guard',
  resumed: 'The session was resumed',
  settings: 'The session settings changed',
};

/** Thread renders events and the answer in flight into a container. */
export class Thread {
  constructor(container, onChange = () => {}) {
    this.root = container;
    this.onChange = onChange;
    this.bySeq = new Map();
    this.pending = new Map(); // turn_id -> element of a user turn not yet durable
  }

  clear() {
    this.root.replaceChildren();
    this.bySeq.clear();
    this.pending.clear();
  }

  get isEmpty() { return this.root.childElementCount === 0; }

  /** Shows a user turn the moment it is sent, before the server stored it. */
  pendingUser(turnId, text) {
    const m = this.#message('user', text);
    m.classList.add('pending');
    m.dataset.turnId = turnId;
    this.pending.set(turnId, m);
    this.root.append(m);
    this.onChange();
  }

  /** Removes a user turn the server refused. */
  dropPending(turnId) {
    this.pending.get(turnId)?.remove();
    this.pending.delete(turnId);
    this.onChange();
  }

  /** Shows a durable event once. */
  event(e) {
    if (e.kind === 'assistant') {
      this.#answer(e);
    } else if (!this.bySeq.has(e.seq)) {
      const m = this.#eventElement(e);
      if (m) {
        m.dataset.seq = String(e.seq);
        this.bySeq.set(e.seq, m);
        this.root.append(m);
      }
    }
    this.onChange();
  }

  /** Adds a piece of the answer in flight. */
  delta(d) {
    const m = this.#streaming(d.seq);
    if (d.text) {
      m.querySelector('.body').append(d.text);
    } else if (d.toolCall) {
      const c = d.toolCall;
      let t = m.querySelector(`.tool[data-index="${c.index}"]`);
      if (!t) {
        t = el('div', 'tool');
        t.dataset.index = String(c.index);
        t.append(el('strong', '', `${c.name || 'tool'}(`), el('span', 'args'), ')');
        m.insertBefore(t, m.querySelector('.meta'));
      }
      t.querySelector('.args').append(c.arguments);
    }
    this.onChange();
  }

  #eventElement(e) {
    if (e.kind === 'user') {
      const p = e.turn_id && this.pending.get(e.turn_id);
      if (p) {
        this.pending.delete(e.turn_id);
        p.classList.remove('pending');
        p.remove(); // re-appended in log order below
        return p;
      }
      return this.#message('user', e.text ?? '');
    }
    if (e.kind === 'tool_result') {
      const m = el('div', 'msg tool-result');
      m.append(el('div', 'tool', `→ ${e.is_error ? 'error: ' : ''}${e.text ?? ''}`));
      return m;
    }
    const text = NOTES[e.kind];
    return text ? el('div', 'note', text) : null;
  }

  #message(kind, text) {
    const m = el('div', `msg ${kind}`);
    if (kind === 'assistant') {
      const who = el('div', 'who');
      who.append(el('span', 'avatar', 's'), el('span', 'name', 'stated'));
      m.append(who);
    }
    m.append(el('div', 'body', text));
    return m;
  }

  #streaming(seq) {
    let m = this.bySeq.get(seq);
    if (!m) {
      m = this.#message('assistant', '');
      m.classList.add('streaming');
      m.dataset.seq = String(seq);
      m.append(el('div', 'meta'));
      this.bySeq.set(seq, m);
      this.root.append(m);
    }
    return m;
  }

  // answer shows a stored answer: the element that streamed it gets the final
  // text (the same text, now durable) and its figures.
  #answer(e) {
    const m = this.#streaming(e.seq);
    m.classList.remove('streaming');
    m.querySelector('.body').textContent = e.text ?? '';
    m.querySelectorAll('.tool').forEach((t) => t.remove());
    const meta = m.querySelector('.meta');
    for (const c of e.tool_calls ?? []) {
      const t = el('div', 'tool');
      t.append(el('strong', '', `${c.name}(`), c.arguments, ')');
      m.insertBefore(t, meta);
    }
    if (!e.text && !(e.tool_calls ?? []).length) {
      m.querySelector('.body').append(el('span', 'muted', 'No answer.'));
    }
    meta.replaceChildren(...answerChips(e));
  }
}

/** The figures of an answer, as chips: model, cost, cache share, tokens, time. */
export function answerChips(e) {
  const chips = [];
  const chip = (cls, text, title) => {
    const c = el('span', `chip ${cls}`.trim(), text);
    if (title) c.title = title;
    chips.push(c);
  };
  if (e.status && STATUS_TEXT[e.status]) {
    chip('status', STATUS_TEXT[e.status], e.error_code ?? '');
  }
  if (e.model) chip('', e.model);
  if (typeof e.cost_usd === 'number') chip('cost', money(e.cost_usd), 'Cost of this answer');
  const u = e.usage;
  if (u && inputTokens(u) > 0) {
    chip(u.cache_read_tokens > 0 ? 'cache' : '', `${percent(cacheReadShare(u))} cache read`,
      `${tokens(u.cache_read_tokens)} of ${tokens(inputTokens(u))} input tokens ` +
      'were read from the provider\'s cache');
    chip('', `${tokens(inputTokens(u))} in · ${tokens(u.output_tokens)} out`);
  }
  if (typeof e.naive_cost_usd === 'number' && e.naive_cost_usd > 0) {
    const saved = e.naive_cost_usd - (e.cost_usd ?? 0);
    const title = `A client resending the whole history would have paid ${money(e.naive_cost_usd)}`;
    if (saved >= 0) chip('saved', `${money(saved)} saved`, title);
    else chip('', `${money(-saved)} more than stateless`, `${title}; writing the cache costs more once`);
  }
  if (e.timing?.total_ms) chip('', duration(e.timing.total_ms), 'Time to the whole answer');
  return chips;
}
