// What the page remembers in this browser: the list of conversations (the
// server keeps the conversations themselves) and the settings. The API key stays
// in this tab only (sessionStorage).

const LIST = 'stated.conversations.v1';
const SETTINGS = 'stated.settings.v1';
const KEY = 'stated.apiKey';
const MAX_CONVERSATIONS = 200;
const MAX_TITLE = 80;

function read(storage, key, fallback) {
  try {
    const v = JSON.parse(storage.getItem(key) ?? 'null');
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function write(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the page still works, it forgets the list.
  }
}

/** The remembered conversations, most recently used first. */
export function conversations() {
  const list = read(localStorage, LIST, []);
  if (!Array.isArray(list)) return [];
  return list
    .filter((c) => c && typeof c.id === 'string' && c.id.length <= 128)
    .sort((a, b) => (b.updated ?? 0) - (a.updated ?? 0));
}

/** Adds or updates the conversation with c.id, keeping what c does not say. */
export function remember(c) {
  const list = conversations();
  const i = list.findIndex((x) => x.id === c.id);
  const merged = { ...(i >= 0 ? list[i] : {}), ...c };
  if (merged.title) merged.title = String(merged.title).slice(0, MAX_TITLE);
  if (i >= 0) list.splice(i, 1);
  list.unshift(merged);
  write(localStorage, LIST, list.slice(0, MAX_CONVERSATIONS));
  return merged;
}

/** Forgets a conversation (it stays on the server). */
export function forget(id) {
  write(localStorage, LIST, conversations().filter((c) => c.id !== id));
}

/** The settings for new conversations: {model, system}. */
export function settings() {
  const s = read(localStorage, SETTINGS, {});
  return { model: String(s.model ?? ''), system: String(s.system ?? '') };
}

/** Saves the settings for new conversations. */
export function saveSettings({ model, system }) {
  write(localStorage, SETTINGS, { model: model.trim(), system });
}

/** The API key of this tab, or ''. */
export function apiKey() {
  try {
    return sessionStorage.getItem(KEY) ?? '';
  } catch {
    return '';
  }
}

/** Sets the API key of this tab; '' removes it. */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch {
    // No session storage: the key lasts until the page is left.
  }
}
