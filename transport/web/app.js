// The chat page: a conversation list, the conversation, and its usage. The
// session ID is kept in the URL (?session=ID), so a reload, even in the middle
// of an answer, resumes the conversation where it was.

import { Session, StatedError, newTurnId } from './stated.js';
import { Thread } from './view.js';
import * as store from './store.js';
import { renderConversation, renderLedger, summarize } from './usage.js';
import { ago, money, shorten } from './format.js';

const $ = (id) => document.getElementById(id);

const page = {
  session: null, // the Session shown, or null before the first turn
  running: false, // an answer is in flight
  view: 'chat',
  title: '',
};

const thread = new Thread($('thread'), () => { showEmpty(); stickToBottom(); });

const SUGGESTIONS = [
  ['Explain prompt caching', 'How does a stateful server keep the provider\'s cache warm?'],
  ['Plan a trip', 'Plan three days in Lisbon for someone who likes food and walking.'],
  ['Write a function', 'Write a function that merges overlapping intervals, with tests.'],
  ['Summarize', 'Summarize the trade-offs between WebSockets and server-sent events.'],
];

// ---- connection ----

function clientOptions() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
  const key = store.apiKey();
  return key ? { url, apiKey: key } : { url };
}

function authHeaders() {
  const key = store.apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// watch wires a session's events to the page.
function watch(s) {
  s.addEventListener('event', (e) => onEvent(s, e.detail));
  s.addEventListener('delta', (e) => {
    if (s !== page.session) return;
    thread.delta(e.detail);
    setRunning(true);
  });
  s.addEventListener('snapshot', () => { if (s === page.session) thread.clear(); });
  s.addEventListener('state', (e) => onState(s, e.detail));
  s.addEventListener('error', (e) => showError(e.detail));
  onState(s, s.state);
}

function onEvent(s, e) {
  if (s !== page.session) return;
  thread.event(e);
  if (e.kind === 'user' && !page.title) setTitle(e.text ?? '');
  if (e.kind === 'assistant') {
    setRunning(false);
    const sum = summarize(s.history);
    store.remember({ id: s.id, title: page.title, updated: Date.parse(e.time) || Date.now(),
      cost: sum.cost, answers: sum.answers.length });
    renderList();
    if (page.view === 'usage') renderUsage();
  }
}

let authProbe = null;

function onState(s, state) {
  if (s !== page.session) return;
  const conn = $('conn');
  conn.dataset.state = state;
  $('conn-label').textContent = {
    connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…',
    failed: 'Offline', closed: '',
  }[state] ?? '';
  if (state === 'open') hideBanner();
  if ((state === 'connecting' || state === 'reconnecting') && !authProbe) {
    authProbe = setTimeout(() => probeAuth(s), 1500);
  }
  if (state === 'open' || state === 'failed') {
    clearTimeout(authProbe);
    authProbe = null;
  }
  if (state === 'failed') {
    showBanner('Lost the connection to the server.', 'Reconnect', () => s.reconnect());
  }
}

// probeAuth finds out whether a connection that does not come up is refused for
// want of an API key: a browser sees no status code on a refused WebSocket.
async function probeAuth(s) {
  authProbe = null;
  if (s !== page.session || s.state === 'open') return;
  try {
    const res = await fetch('/v1/tickets', { method: 'POST', headers: authHeaders() });
    if (res.status === 401 || res.status === 403) {
      s.close();
      needKey(store.apiKey() ? 'The server refused this API key.' : undefined);
    }
  } catch {
    // The server is unreachable: the session keeps trying.
  }
}

function needKey(text = 'This server asks for an API key.') {
  $('conn').dataset.state = 'failed';
  $('conn-label').textContent = 'Needs a key';
  showBanner(text, 'Enter key', openSettings);
}

// ---- conversations ----

async function attach(id, { push = false } = {}) {
  detach();
  setURL(id, push);
  const known = store.conversations().find((c) => c.id === id);
  setTitle(known?.title ?? '');
  let s;
  try {
    s = Session.resume(clientOptions(), { sessionId: id });
  } catch (err) {
    showError(err);
    return;
  }
  page.session = s;
  watch(s);
  renderList();
  try {
    await s.ready();
  } catch (err) {
    if (s !== page.session) return;
    if (err.code === 'session_not_found') {
      store.forget(id);
      detach();
      setURL('', false);
      renderList();
      showBanner('That conversation is not on this server any more.');
      return;
    }
    if (err.code === 'unauthorized' || err.code === 'forbidden') needKey(err.message);
    else showError(err);
    return;
  }
  setSubtitle(s);
  setRunning(s.inflight !== null);
  const sc = $('scroller');
  sc.style.scrollBehavior = 'auto';
  sc.scrollTop = sc.scrollHeight;
  sc.style.scrollBehavior = '';
}

function detach() {
  page.session?.close();
  page.session = null;
  page.title = '';
  thread.clear();
  setRunning(false);
  setSubtitle(null);
  hideBanner();
  $('conn').dataset.state = 'idle';
  $('conn-label').textContent = '';
}

async function openNew() {
  const { model, system } = store.settings();
  const s = Session.open(clientOptions(), { model, system });
  page.session = s;
  watch(s);
  await s.ready();
  setURL(s.id, true);
  setSubtitle(s);
  return s;
}

function newConversation() {
  detach();
  setURL('', true);
  setTitle('');
  renderList();
  closeNav();
  showView('chat');
  $('input').focus();
}

// ---- turns ----

async function send(text) {
  text = text.trim();
  if (!text || page.running) return;
  const turnId = newTurnId();
  thread.pendingUser(turnId, text);
  setRunning(true);
  if (!page.title) setTitle(text);
  try {
    const s = page.session ?? await openNew();
    store.remember({ id: s.id, title: page.title, updated: Date.now() });
    renderList();
    await s.send(text, { turnId }).answer;
  } catch (err) {
    if (!(err instanceof StatedError) || !page.session?.history.some((e) => e.turn_id === turnId)) {
      thread.dropPending(turnId);
      $('input').value ||= text;
      autoGrow();
    }
    if (page.session && !page.session.id) { // the session was never opened
      page.session.close();
      page.session = null;
      setTitle('');
    }
    setRunning(page.session?.inflight != null);
    if (err.code === 'unauthorized' || err.code === 'forbidden') needKey(err.message);
    else if (err.code !== 'closed') showError(err);
  }
}

function setRunning(on) {
  page.running = on;
  $('composer').classList.toggle('running', on);
  $('send').setAttribute('aria-label', on ? 'Stop' : 'Send');
  updateSend();
}

function updateSend() {
  $('send').disabled = !page.running && $('input').value.trim() === '';
}

// ---- chrome ----

function setURL(id, push) {
  const u = new URL(location.href);
  if (id) u.searchParams.set('session', id);
  else u.searchParams.delete('session');
  if (u.href === location.href) return;
  history[push ? 'pushState' : 'replaceState'](null, '', u);
}

function setTitle(text) {
  page.title = shorten(text, 80);
  $('title').textContent = page.title || 'New conversation';
  document.title = page.title ? `${page.title} · stated` : 'stated';
}

function setSubtitle(s) {
  const sub = $('subtitle');
  sub.replaceChildren();
  if (!s?.id) return;
  const code = document.createElement('code');
  code.textContent = s.id;
  sub.append(`${s.model || 'default model'} · session `, code);
}

function renderList() {
  const nav = $('conversations');
  const list = store.conversations();
  nav.replaceChildren();
  if (!list.length) {
    const none = document.createElement('div');
    none.className = 'none';
    none.textContent = 'Your conversations will appear here.';
    nav.append(none);
    return;
  }
  const head = document.createElement('div');
  head.className = 'group';
  head.textContent = 'Recent';
  nav.append(head);
  for (const c of list) {
    const a = document.createElement('a');
    a.className = 'conv';
    a.href = `/?session=${encodeURIComponent(c.id)}`;
    if (page.session?.id === c.id) a.setAttribute('aria-current', 'page');
    const t = document.createElement('span');
    t.className = 'conv-title';
    t.textContent = c.title || 'Untitled';
    const m = document.createElement('span');
    m.className = 'conv-meta';
    m.textContent = [ago(c.updated), c.cost ? money(c.cost) : ''].filter(Boolean).join(' · ');
    a.append(t, m);
    a.addEventListener('click', (ev) => {
      if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      closeNav();
      if (page.session?.id !== c.id) attach(c.id, { push: true });
    });
    nav.append(a);
  }
}

function showEmpty() {
  $('empty').hidden = !thread.isEmpty || page.session !== null && page.session.history.length > 0;
}

function stickToBottom() {
  const sc = $('scroller');
  if (sc.scrollHeight - sc.scrollTop - sc.clientHeight < 160) sc.scrollTop = sc.scrollHeight;
}

function showView(view) {
  page.view = view;
  $('tab-chat').setAttribute('aria-selected', String(view === 'chat'));
  $('tab-usage').setAttribute('aria-selected', String(view === 'usage'));
  $('chat-view').hidden = view !== 'chat';
  $('usage-view').hidden = view !== 'usage';
  if (view === 'usage') renderUsage();
}

function renderUsage() {
  const root = $('usage');
  const mine = document.createElement('section');
  const all = document.createElement('section');
  mine.className = all.className = 'usage-section';
  root.replaceChildren(mine, all);
  renderConversation(mine, page.session?.history ?? [], page.title);
  renderLedger(all, authHeaders());
}

let bannerAction = null;

function showBanner(text, action, fn) {
  $('banner-text').textContent = text;
  const b = $('banner-action');
  b.hidden = !action;
  b.textContent = action ?? '';
  bannerAction = fn ?? null;
  $('banner').hidden = false;
}

function hideBanner() { $('banner').hidden = true; }

function showError(err) {
  const msg = String(err?.message ?? err).replace(/^(stated|session|transport): /, '');
  const retry = err?.retry ? ' You can try again.' : '';
  showBanner(`${msg.charAt(0).toUpperCase()}${msg.slice(1)}.${retry}`.replace('..', '.'));
}

function openNav() { $('app').classList.add('nav-open'); $('scrim').hidden = false; }
function closeNav() { $('app').classList.remove('nav-open'); $('scrim').hidden = true; }

function openSettings() {
  const { model, system } = store.settings();
  $('api-key').value = store.apiKey();
  $('model').value = model;
  $('system').value = system;
  $('settings').showModal();
}

function onSettingsClosed() {
  if ($('settings').returnValue !== 'save') return;
  const keyChanged = $('api-key').value.trim() !== store.apiKey();
  store.setApiKey($('api-key').value.trim());
  store.saveSettings({ model: $('model').value, system: $('system').value });
  if (keyChanged && page.session?.id) attach(page.session.id);
  else if (keyChanged) hideBanner();
  $('input').focus();
}

function autoGrow() {
  const t = $('input');
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight, 200)}px`;
  updateSend();
}

// ---- start ----

function wire() {
  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (page.running) {
      page.session?.cancel();
      return;
    }
    const text = $('input').value;
    $('input').value = '';
    autoGrow();
    send(text);
  });
  $('input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      if (!page.running) $('composer').requestSubmit();
    }
  });
  $('input').addEventListener('input', autoGrow);
  $('new-chat').addEventListener('click', newConversation);
  $('tab-chat').addEventListener('click', () => showView('chat'));
  $('tab-usage').addEventListener('click', () => showView('usage'));
  $('menu').addEventListener('click', openNav);
  $('scrim').addEventListener('click', closeNav);
  $('open-settings').addEventListener('click', openSettings);
  $('settings').addEventListener('close', onSettingsClosed);
  $('banner-close').addEventListener('click', hideBanner);
  $('banner-action').addEventListener('click', () => bannerAction?.());
  window.addEventListener('popstate', () => {
    const id = new URL(location.href).searchParams.get('session') ?? '';
    if (id && id !== page.session?.id) attach(id);
    if (!id && page.session) newConversation();
  });
  let resized = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (page.view === 'usage') renderUsage(); }, 150);
  });
  for (const [title, prompt] of SUGGESTIONS) {
    const b = document.createElement('button');
    b.type = 'button';
    const strong = document.createElement('strong');
    strong.textContent = title;
    b.append(strong, prompt);
    b.addEventListener('click', () => send(prompt));
    $('suggestions').append(b);
  }
  $('server-status').textContent = location.host;
}

wire();
renderList();
updateSend();
const initial = new URL(location.href).searchParams.get('session');
if (initial) attach(initial);
else $('input').focus();
