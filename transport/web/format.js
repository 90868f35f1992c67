// Formatting of money, tokens, shares and times for the chat page.

/** Formats a USD amount with enough digits to tell small costs apart. */
export function money(usd) {
  if (typeof usd !== 'number' || !Number.isFinite(usd)) return '—';
  if (usd === 0) return '$0';
  const a = Math.abs(usd);
  const sign = usd < 0 ? '−' : '';
  if (a < 0.000001) return `${sign}<$0.000001`;
  if (a < 1) return `${sign}$${Number(a.toPrecision(3)).toString()}`;
  return `${sign}$${a.toFixed(2)}`;
}

/** Formats a token count with thousands separators. */
export function tokens(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : '—';
}

/** Formats a share in [0, 1] as a whole percentage. */
export function percent(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return '—';
  return `${Math.round(x * 100)}%`;
}

/** The input tokens of a usage record, cached or not. */
export function inputTokens(u) {
  if (!u) return 0;
  return (u.input_tokens ?? 0) + (u.cache_write_5m_tokens ?? 0) +
    (u.cache_write_1h_tokens ?? 0) + (u.cache_read_tokens ?? 0);
}

/** The share of a usage record's input tokens read from the provider's cache. */
export function cacheReadShare(u) {
  const all = inputTokens(u);
  return all > 0 ? (u.cache_read_tokens ?? 0) / all : 0;
}

/** Formats milliseconds as "820 ms" or "2.4 s". */
export function duration(ms) {
  if (typeof ms !== 'number') return '';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Formats a time as "just now", "12 min ago", "3 h ago", "Yesterday" or a date. */
export function ago(time, now = Date.now()) {
  const t = new Date(time).getTime();
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, (now - t) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 172800) return 'Yesterday';
  return new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

/** Shortens text to at most n characters on a word boundary. */
export function shorten(text, n) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  if (s.length <= n) return s;
  const cut = s.slice(0, n - 1);
  const sp = cut.lastIndexOf(' ');
  return `${(sp > n / 2 ? cut.slice(0, sp) : cut)}…`;
}
