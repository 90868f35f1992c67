// stated.js: a dependency-free client of the stated.v1 WebSocket protocol for
// browsers and Node (20 with --experimental-websocket, 22 and later as is).
//
// A Session holds one conversation. It reconnects by itself and resumes from the
// last event it holds, so a caller sees every event once and every piece of an
// answer once, whatever happens to the connection. docs/protocol.md in the
// stated repository is the contract this file implements.

/** The WebSocket subprotocol this client speaks. */
export const PROTOCOL = 'stated.v1';

/**
 * Codes of errors the client raises itself; server codes (docs/protocol.md) are
 * passed through unchanged.
 */
export const ClientCodes = Object.freeze({
  CLOSED: 'closed', // the session was closed by its caller
  UNREACHABLE: 'unreachable', // no connection could be made for reconnectForMs
  FRAME_TOO_BIG: 'frame_too_big', // the server closed with 1009 after this frame
  TURN_IN_PROGRESS: 'turn_in_progress', // a turn of this session is still running
  INVALID: 'invalid', // an argument breaks a rule of the protocol
});

// Server error codes a retry can help with (docs/protocol.md, "error").
const RETRYABLE = new Set(['busy', 'shutting_down', 'internal', ClientCodes.UNREACHABLE]);

/**
 * StatedError is every error this module throws or rejects with: an error frame
 * from the server or a failure of the client. `code` is the protocol's error code
 * or one of ClientCodes; `retry` says whether sending the same thing again later
 * can succeed.
 */
export class StatedError extends Error {
  constructor(code, message, { retry, turnId = '', closeCode = 0 } = {}) {
    super(message || code);
    this.name = 'StatedError';
    this.code = code;
    this.retry = retry ?? RETRYABLE.has(code);
    this.turnId = turnId;
    this.closeCode = closeCode;
  }
}

const DEFAULTS = Object.freeze({
  pingIntervalMs: 20000, // the server drops a connection silent for 60 s
  pongTimeoutMs: 15000, // no frame this long after a ping: the connection is dead
  connectTimeoutMs: 10000, // from creating the socket to the end of catch-up
  reconnectForMs: 60000, // how long to keep trying before pending turns fail
  backoffInitialMs: 100,
  backoffMaxMs: 5000,
});

const MAX_TURN_ID_BYTES = 128;

/**
 * Opens a new session on the server and resolves once the server has created it.
 * If the connection drops before the server says so, the open is tried again, so
 * the server may hold an extra empty session.
 */
export async function openSession(options, settings = {}) {
  const s = Session.open(options, settings);
  await s.ready();
  return s;
}

/**
 * Attaches to an existing session and resolves once every event after `lastSeq`
 * has arrived (they are in `history` and were dispatched as `event`). Without
 * `epoch` and `lastSeq`, or with ones that do not match the server's log, the
 * whole log is read.
 */
export async function resumeSession(options, { sessionId, epoch = 0, lastSeq = 0 }) {
  const s = Session.resume(options, { sessionId, epoch, lastSeq });
  await s.ready();
  return s;
}

/**
 * Session is one conversation on a server. It dispatches:
 * - `event` (detail: the durable event) for every event, once, in seq order;
 * - `delta` (detail: {seq, text} or {seq, toolCall}) for every new piece of the
 *   answer in flight, whoever asked for it, once;
 * - `state` (detail: the new state) when the connection state changes;
 * - `snapshot` when the server replaced the log the client held (history restarts);
 * - `error` (detail: a StatedError) for server errors that belong to no turn.
 */
export class Session extends EventTarget {
  #opts;
  #WS;
  #first; // the open frame until the server has answered it
  #ws = null;
  #state = 'connecting';
  #ready; // {promise, resolve, reject} of the first attach
  #attached = false; // the first session frame has arrived
  #catchUp = 0; // catch-up events still to come on this connection
  #synced = false; // this connection has caught up
  #attachedHere = false; // the session frame arrived on this connection
  #since = 0; // when the current run of failed connections started
  #backoff = 0;
  #timers = new Set();
  #lastFrameAt = 0;
  #pongs = [];
  #inflight = null; // the answer in flight as far as delivered
  #turn = null; // the running turn of this client
  #lastSent = null; // the turn frame sent last, for a 1009 close

  /**
   * Starts opening a new session and returns it at once, connecting: add
   * listeners, then await ready(). Listeners added before the first await see
   * every event, the catch-up included.
   */
  static open(options, settings = {}) {
    const first = { type: 'open' };
    if (settings.model) first.model = String(settings.model);
    if (settings.system) first.system = String(settings.system);
    if (settings.maxTokens) first.max_tokens = Number(settings.maxTokens);
    if (settings.tools?.length) first.tools = settings.tools.map(toolToWire);
    return new Session(options, { open: first });
  }

  /**
   * Starts resuming a session and returns it at once, connecting: add listeners,
   * then await ready(). Without epoch and lastSeq the whole log is read.
   */
  static resume(options, { sessionId, epoch = 0, lastSeq = 0 }) {
    if (!sessionId || typeof sessionId !== 'string') {
      throw new StatedError(ClientCodes.INVALID, 'stated: resume needs a sessionId');
    }
    return new Session(options, { resume: { sessionId, epoch, lastSeq } });
  }

  /** @internal Use Session.open, Session.resume, openSession or resumeSession. */
  constructor(options, { open, resume }) {
    super();
    if (!options || typeof options.url !== 'string') {
      throw new StatedError(ClientCodes.INVALID, 'stated: options.url is required');
    }
    this.#opts = { ...DEFAULTS, ...options, url: endpointURL(options.url) };
    this.#WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WS !== 'function') {
      throw new StatedError(ClientCodes.INVALID,
        'stated: no WebSocket here; pass options.WebSocket (Node 20: --experimental-websocket)');
    }
    this.#first = open ?? null;
    /** The session's ID ('' until the server has opened it). */
    this.id = resume?.sessionId ?? '';
    /** The epoch of the log the client holds. */
    this.epoch = resume?.epoch ?? 0;
    /** The seq of the last durable event the client holds. */
    this.lastSeq = resume?.lastSeq ?? 0;
    /** The model and max_tokens the session uses, from the server. */
    this.model = '';
    this.maxTokens = 0;
    /** The durable events received by this client, in seq order. */
    this.history = [];
    this.#ready = deferred();
    this.#since = Date.now();
    this.#dial();
  }

  /** The connection state: connecting, open, reconnecting, failed or closed. */
  get state() { return this.#state; }

  /**
   * The answer in flight as far as this client has it ({seq, text, toolCalls}),
   * or null when none is running.
   */
  get inflight() {
    const a = this.#inflight;
    if (!a) return null;
    return { seq: a.seq, text: a.text, toolCalls: a.calls.map((c) => ({ ...c })) };
  }

  /** Resolves when the session is attached for the first time. */
  ready() { return this.#ready.promise; }

  /**
   * Sends a user turn and returns its Turn: iterate it for the answer's pieces,
   * await `turn.answer` for the durable answer. The turn is sent again after a
   * reconnect until it is acknowledged, under the same turnId, which the server
   * runs at most once. Throws StatedError `turn_in_progress` while another turn of
   * this client is running.
   */
  send(text, { turnId } = {}) {
    if (typeof text !== 'string' || text === '') {
      throw new StatedError('empty_turn', 'stated: a turn needs text');
    }
    const id = checkTurnId(turnId ?? newTurnId());
    return this.#start([{ type: 'turn', turn_id: id, text }]);
  }

  /**
   * Sends the results of the last answer's tool calls, one frame each, and returns
   * the Turn of the answer that follows them.
   */
  sendToolResults(results) {
    if (!Array.isArray(results) || results.length === 0) {
      throw new StatedError(ClientCodes.INVALID, 'stated: no tool results');
    }
    const frames = results.map((r) => {
      const f = { type: 'tool_result', turn_id: checkTurnId(r.turnId ?? newTurnId()),
        tool_call_id: String(r.toolCallId ?? '') };
      if (r.content) f.content = String(r.content);
      if (r.isError) f.is_error = true;
      return f;
    });
    return this.#start(frames);
  }

  /** Asks for a new answer to the last turn after a failed, cut or cancelled one. */
  retry() {
    return this.#start([], true);
  }

  /**
   * Asks the server to stop the answer in flight. It is stored with what it said
   * so far and status `aborted`. Without an answer in flight it does nothing.
   */
  cancel() {
    if (this.#turn) this.#turn.cancelRequested = true;
    this.#sendFrame({ type: 'cancel' });
  }

  /** Sends an application-level ping and resolves with the round trip in ms. */
  ping() {
    const d = deferred();
    const at = now();
    this.#pongs.push((ok) => (ok ? d.resolve(now() - at) : d.reject(
      new StatedError(ClientCodes.CLOSED, 'stated: connection lost before the pong'))));
    if (!this.#sendFrame({ type: 'ping' })) this.#pongs.pop()(false);
    return d.promise;
  }

  /** Tries to connect again after the session `failed`. */
  reconnect() {
    if (this.#state !== 'failed') return;
    this.#since = Date.now();
    this.#backoff = 0;
    this.#setState('reconnecting');
    this.#dial();
  }

  /** Closes the connection for good. The session stays on the server. */
  close() {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#clearTimers();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      try { ws.close(1000); } catch { /* already closing */ }
    }
    const err = new StatedError(ClientCodes.CLOSED, 'stated: session closed');
    this.#ready.reject(err);
    this.#turn?.fail(err);
    this.#turn = null;
    this.#flushPongs();
  }

  // ---- turns ----

  #start(frames, retry = false) {
    if (this.#state === 'closed') {
      throw new StatedError(ClientCodes.CLOSED, 'stated: session closed');
    }
    if (this.#turn) {
      throw new StatedError(ClientCodes.TURN_IN_PROGRESS,
        'stated: a turn of this session is still running');
    }
    const t = new Turn(this, frames, this.lastSeq);
    t.retryPending = retry;
    this.#turn = t;
    this.#pump();
    return t;
  }

  /** @internal Called by Turn.cancel. */
  _cancel(t) {
    if (t === this.#turn) this.cancel();
  }

  // pump sends the turn's next frame once the previous one is durable. A retry is
  // sent once: sent again, it could ask for a second answer.
  #pump() {
    const t = this.#turn;
    if (t?.retryPending && this.#synced && this.#sendFrame({ type: 'retry' })) {
      t.retryPending = false;
    }
    if (!t || !this.#synced || t.busy || t.sent > t.acked || t.acked >= t.frames.length) {
      return;
    }
    const f = t.frames[t.acked];
    if (this.#sendFrame(f)) {
      t.sent = t.acked + 1;
      this.#lastSent = f;
    }
  }

  #finishTurn(t) {
    if (this.#turn === t) this.#turn = null;
  }

  // ---- connection ----

  // dial makes one connection attempt; with credentials it first fetches a
  // ticket, which is good for one connection.
  async #dial() {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    let url = this.#opts.url;
    if (this.#opts.apiKey || this.#opts.ticket) {
      try {
        const ticket = await (this.#opts.ticket ?? ticketFetcher(url, this.#opts.apiKey))();
        const u = new URL(url);
        u.searchParams.set('ticket', ticket);
        url = u.toString();
      } catch (e) {
        const err = e instanceof StatedError ? e
          : new StatedError(ClientCodes.UNREACHABLE, `stated: ticket: ${e.message}`);
        this.#lost(err.retry ? null : err);
        return;
      }
      if (this.#state === 'closed' || this.#state === 'failed') return;
    }
    let ws;
    try {
      ws = new this.#WS(url, PROTOCOL);
    } catch (e) {
      this.#lost(new StatedError(ClientCodes.INVALID, `stated: ${e.message}`, { retry: false }));
      return;
    }
    this.#ws = ws;
    this.#attachedHere = false;
    this.#synced = false;
    const timeout = this.#after(this.#opts.connectTimeoutMs, () => {
      if (this.#ws === ws && !this.#synced) this.#drop(ws);
    });
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#lastFrameAt = now();
      this.#sendFrame(this.#firstFrame());
    };
    ws.onmessage = (m) => {
      if (this.#ws !== ws) return;
      this.#lastFrameAt = now();
      this.#onMessage(ws, m.data);
      if (this.#synced) clearTimeout(timeout);
    };
    ws.onclose = (e) => {
      clearTimeout(timeout);
      this.#timers.delete(timeout);
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#onClose(e.code);
    };
    // A close event should follow an error; some WebSocket implementations (Node
    // 20's) send none when the connection could not be made.
    ws.onerror = () => this.#after(50, () => { if (this.#ws === ws) this.#drop(ws); });
  }

  #firstFrame() {
    if (this.#first && !this.#attached) return this.#first;
    const f = { type: 'resume', session_id: this.id };
    if (this.epoch) f.epoch = this.epoch;
    if (this.lastSeq) f.last_seq = this.lastSeq;
    return f;
  }

  #drop(ws) {
    try { ws.close(4001); } catch { /* closing */ }
    if (this.#ws === ws) {
      this.#ws = null;
      this.#onClose(0);
    }
  }

  #onClose(code) {
    this.#flushPongs();
    this.#synced = false;
    if (this.#state === 'closed') return;
    if (code === 1009 && this.#lastSent && this.#turn) {
      const err = new StatedError(ClientCodes.FRAME_TOO_BIG,
        'stated: the server refused a frame over its size limit', { retry: false, closeCode: code,
          turnId: this.#lastSent.turn_id ?? '' });
      this.#turn.fail(err);
      this.#turn = null;
    }
    this.#lastSent = null;
    this.#lost(null);
  }

  // lost schedules the next connection attempt, or fails the session after
  // reconnectForMs of failed attempts.
  #lost(fatal) {
    if (this.#state === 'closed') return;
    if (this.#state === 'open') {
      this.#since = Date.now();
      this.#backoff = 0;
    }
    const expired = Date.now() - this.#since > this.#opts.reconnectForMs;
    if (fatal || expired) {
      const err = fatal ?? new StatedError(ClientCodes.UNREACHABLE,
        'stated: no connection to the server', { retry: true });
      this.#fail(err);
      return;
    }
    this.#setState(this.#attached ? 'reconnecting' : 'connecting');
    this.#backoff = this.#backoff === 0 ? this.#opts.backoffInitialMs
      : Math.min(this.#backoff * 2, this.#opts.backoffMaxMs);
    const delay = this.#backoff / 2 + Math.random() * this.#backoff / 2;
    this.#after(delay, () => this.#dial());
  }

  #fail(err) {
    this.#clearTimers();
    this.#flushPongs();
    if (this.#ws) {
      try { this.#ws.close(1000); } catch { /* closing */ }
      this.#ws = null;
    }
    this.#setState('failed');
    this.#ready.reject(err);
    this.#turn?.fail(err);
    this.#turn = null;
  }

  #setState(s) {
    if (this.#state === s) return;
    this.#state = s;
    this.dispatchEvent(new CustomEvent('state', { detail: s }));
  }

  #sendFrame(f) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(f));
      return true;
    } catch {
      this.#drop(ws);
      return false;
    }
  }

  #after(ms, fn) {
    const id = setTimeout(() => { this.#timers.delete(id); fn(); }, ms);
    this.#timers.add(id);
    return id;
  }

  #clearTimers() {
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
  }

  // keepalive pings every pingIntervalMs while the connection is synced; a
  // connection from which nothing arrives for pongTimeoutMs after a ping is dropped
  // and resumed.
  #keepalive(ws) {
    this.#after(this.#opts.pingIntervalMs, () => {
      if (this.#ws !== ws) return;
      const sentAt = now();
      this.#sendFrame({ type: 'ping' });
      this.#after(this.#opts.pongTimeoutMs, () => {
        if (this.#ws === ws && this.#lastFrameAt < sentAt) this.#drop(ws);
      });
      this.#keepalive(ws);
    });
  }

  #flushPongs() {
    const p = this.#pongs;
    this.#pongs = [];
    for (const done of p) done(false);
  }

  // ---- frames ----

  #onMessage(ws, data) {
    let f;
    try {
      f = typeof data === 'string' ? JSON.parse(data) : null;
    } catch {
      f = null;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') {
      this.#drop(ws); // not the protocol: resume on a new connection
      return;
    }
    switch (f.type) {
      case 'session': this.#onSession(ws, f); break;
      case 'ack': this.#onAck(f); break;
      case 'event': this.#onEvent(ws, f); break;
      case 'delta': this.#onDelta(ws, f); break;
      case 'partial': this.#onPartial(ws, f); break;
      case 'error': this.#onError(ws, f); break;
      case 'pong': this.#pongs.shift()?.(true); break;
      default: break; // frames of a later protocol version are ignored
    }
  }

  #onSession(ws, f) {
    this.#attachedHere = true;
    if (f.snapshot || f.session_id !== this.id) {
      const had = this.history.length > 0;
      this.history = [];
      this.lastSeq = 0;
      this.#inflight = null;
      if (had) this.dispatchEvent(new CustomEvent('snapshot'));
    }
    this.id = f.session_id;
    this.epoch = f.epoch ?? 0;
    this.model = f.model ?? '';
    this.maxTokens = f.max_tokens ?? 0;
    this.#catchUp = f.missed ?? 0;
    if (this.#catchUp === 0) this.#onSynced(ws);
  }

  // onSynced runs once this connection has caught up: the session is usable.
  #onSynced(ws) {
    this.#synced = true;
    this.#attached = true;
    this.#first = null;
    this.#backoff = 0;
    this.#setState('open');
    this.#ready.resolve(this);
    const t = this.#turn;
    if (t) {
      t.sent = t.acked; // frames sent but not acknowledged go again, same turn_id
      if (t.cancelRequested && t.acked === t.frames.length) this.#sendFrame({ type: 'cancel' });
    }
    this.#pump();
    this.#keepalive(ws);
  }

  #onAck(f) {
    const t = this.#turn;
    const i = t ? t.frames.findIndex((fr) => fr.turn_id === f.turn_id) : -1;
    if (i >= 0 && f.seq === this.lastSeq + 1) {
      const fr = t.frames[i];
      this.#record(userEvent(fr, f.seq));
    } else if (f.seq > this.lastSeq + 1 && this.#ws) {
      this.#drop(this.#ws); // events are missing before this one: resume fills them in
      return;
    }
    if (i >= 0) this.#turnAcked(t, i, f.seq, !!f.duplicate);
  }

  #onEvent(ws, f) {
    const e = f.event;
    if (!e || typeof e.seq !== 'number') return;
    if (this.#catchUp > 0) {
      this.#catchUp--;
    }
    if (e.seq > this.lastSeq + 1) {
      this.#drop(ws); // a gap: resume from what the client holds
      return;
    }
    if (e.seq === this.lastSeq + 1) {
      if (e.kind === 'assistant') this.#finishAnswer(e);
      this.#record(e);
      this.#onDurable(e);
    }
    if (!this.#synced && this.#catchUp === 0 && this.#attachedHere) this.#onSynced(ws);
  }

  #record(e) {
    this.lastSeq = e.seq;
    this.history.push(e);
    this.dispatchEvent(new CustomEvent('event', { detail: e }));
  }

  // onDurable moves the running turn on with a durable event.
  #onDurable(e) {
    const t = this.#turn;
    if (!t) return;
    if (e.kind !== 'assistant') {
      const i = t.frames.findIndex((fr) => fr.turn_id === e.turn_id);
      if (i >= 0) this.#turnAcked(t, i, e.seq, true);
      return;
    }
    if (t.busy) {
      t.busy = false; // the answer that kept the server busy is done: send ours
      t.sent = t.acked;
      this.#pump();
      return;
    }
    if (t.acked === t.frames.length && e.seq > t.ackSeq) {
      this.#finishTurn(t);
      t.finish(e);
    }
  }

  #turnAcked(t, i, seq, duplicate) {
    if (i < t.acked) return;
    t.acked = i + 1;
    t.ackSeq = seq;
    t.onAck({ seq, turnId: t.frames[i].turn_id, duplicate });
    if (t.acked < t.frames.length) {
      this.#pump();
      return;
    }
    // A turn sent again after its answer was stored gets that answer.
    const done = this.history.find((e) => e.kind === 'assistant' && e.seq > seq);
    if (done) {
      if (done.text) t.push({ seq: done.seq, text: done.text });
      this.#finishTurn(t);
      t.finish(done);
      return;
    }
    if (t.cancelRequested) this.#sendFrame({ type: 'cancel' });
  }

  #onError(ws, f) {
    const err = new StatedError(f.code ?? 'internal', f.message ?? '',
      { retry: !!f.retry, turnId: f.turn_id ?? '' });
    if (!this.#attachedHere) {
      // The open or resume of this connection was refused.
      if (err.retry) {
        this.#drop(ws);
      } else {
        this.#fail(err);
      }
      return;
    }
    if (err.code === 'shutting_down') {
      this.#drop(ws);
      return;
    }
    const t = this.#turn;
    if (t && err.code === 'busy' && t.acked < t.frames.length) {
      t.busy = true; // wait for the answer in flight, then send again
      t.sent = t.acked;
      return;
    }
    const owned = t && (err.turnId === '' ? t.sent > t.acked || t.frames.length === 0
      : t.frames.some((fr) => fr.turn_id === err.turnId));
    if (owned) {
      this.#finishTurn(t);
      t.fail(err);
      return;
    }
    this.dispatchEvent(new CustomEvent('error', { detail: err }));
  }

  // ---- the answer in flight ----

  #onDelta(ws, f) {
    if (typeof f.seq !== 'number' || f.seq <= this.lastSeq) return;
    const a = this.#answer(f.seq);
    const d = f.tool_call
      ? applyCall(a, f.tool_call, f.offset ?? 0)
      : applyText(a, f.text ?? '', f.offset ?? 0);
    if (d === GAP) {
      this.#drop(ws); // a piece is missing: the partial after resume has it
      return;
    }
    if (d) this.#emitDelta({ seq: f.seq, ...d });
  }

  #onPartial(ws, f) {
    if (typeof f.seq !== 'number' || f.seq <= this.lastSeq) return;
    const a = this.#answer(f.seq);
    const out = [];
    const t = applyText(a, f.text ?? '', 0);
    if (t && t !== GAP) out.push(t);
    (f.tool_calls ?? []).forEach((c, index) => {
      const d = applyCall(a, { index, id: c.id, name: c.name, arguments: c.arguments ?? '' }, 0);
      if (d && d !== GAP) out.push(d);
    });
    for (const d of out) this.#emitDelta({ seq: f.seq, ...d });
  }

  #answer(seq) {
    if (!this.#inflight || this.#inflight.seq !== seq) {
      this.#inflight = { seq, bytes: 0, text: '', calls: [], callBytes: [] };
    }
    return this.#inflight;
  }

  // finishAnswer passes on what the stored answer has beyond the pieces already
  // given, so the pieces always add up to the answer's text.
  #finishAnswer(e) {
    const a = this.#inflight;
    const t = this.#turn;
    const owned = t && !t.busy && t.acked === t.frames.length && e.seq > t.ackSeq;
    if (a?.seq === e.seq || owned) {
      const cur = this.#answer(e.seq);
      const out = [];
      const d = applyText(cur, e.text ?? '', 0);
      if (d && d !== GAP) out.push(d);
      (e.tool_calls ?? []).forEach((c, index) => {
        const dc = applyCall(cur, { index, id: c.id, name: c.name,
          arguments: c.arguments ?? '' }, 0);
        if (dc && dc !== GAP) out.push(dc);
      });
      for (const x of out) this.#emitDelta({ seq: e.seq, ...x });
    }
    this.#inflight = null;
  }

  #emitDelta(d) {
    const t = this.#turn;
    if (t && !t.busy && t.acked === t.frames.length && d.seq > t.ackSeq) t.push(d);
    this.dispatchEvent(new CustomEvent('delta', { detail: d }));
  }
}

/**
 * Turn is one request of the client: a user turn, tool results or a retry. It is
 * an async iterable of the answer's pieces ({seq, text} or {seq, toolCall}), each
 * given once; joined, the text pieces are the answer's text.
 */
export class Turn {
  #session;
  #queue = [];
  #waiting = null;
  #done = false;
  #error = null;
  #answer = deferred();
  #acks = [];

  constructor(session, frames, lastSeq) {
    this.#session = session;
    this.frames = frames;
    /** The client's turn IDs, one per frame. */
    this.turnIds = frames.map((f) => f.turn_id);
    this.acked = 0; // frames known durable
    this.sent = 0; // frames sent on this connection
    this.ackSeq = lastSeq; // seq of the last durable frame of this turn
    this.busy = false;
    this.cancelRequested = false;
    this.retryPending = false;
    /** Resolves with the durable answer event; rejects with a StatedError. */
    this.answer = this.#answer.promise;
    this.answer.catch(() => {}); // a caller that only iterates must not see it unhandled
  }

  /** The acknowledgements received so far: [{seq, turnId, duplicate}]. */
  get acks() { return this.#acks.slice(); }

  /** Stops the answer (see Session.cancel); the answer still arrives, `aborted`. */
  cancel() { this.#session._cancel(this); }

  /** Resolves with the whole answer text once the answer is durable. */
  async text() { return (await this.answer).text ?? ''; }

  /** @internal */
  onAck(a) { this.#acks.push(a); }

  /** @internal */
  push(d) {
    if (this.#done) return;
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = null;
      w.resolve({ value: d, done: false });
    } else {
      this.#queue.push(d);
    }
  }

  /** @internal */
  finish(e) {
    this.#done = true;
    this.#answer.resolve(e);
    this.#wake();
  }

  /** @internal */
  fail(err) {
    if (this.#done) return;
    this.#done = true;
    this.#error = err;
    this.#answer.reject(err);
    this.#wake();
  }

  #wake() {
    const w = this.#waiting;
    if (!w) return;
    this.#waiting = null;
    if (this.#error) w.reject(this.#error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this.#queue.length) return Promise.resolve({ value: this.#queue.shift(), done: false });
        if (this.#error) return Promise.reject(this.#error);
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        this.#waiting = deferred();
        return this.#waiting.promise;
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }
}

// ---- helpers ----

const GAP = Symbol('gap');
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function byteLength(s) { return encoder.encode(s).length; }

function fromByte(s, n) { return n === 0 ? s : decoder.decode(encoder.encode(s).subarray(n)); }

// applyText adds a piece of answer text at a UTF-8 byte offset and returns what is
// new in it ({text}), null when nothing is, or GAP when text before it is missing.
function applyText(a, text, offset) {
  if (offset > a.bytes) return GAP;
  const end = offset + byteLength(text);
  if (end <= a.bytes) return null;
  const fresh = fromByte(text, a.bytes - offset);
  a.bytes = end;
  a.text += fresh;
  return { text: fresh };
}

// applyCall does for a tool call's arguments what applyText does for text.
function applyCall(a, c, offset) {
  const i = c.index ?? 0;
  const known = a.calls[i];
  if (!known) {
    a.calls[i] = { id: c.id ?? '', name: c.name ?? '', arguments: '' };
    a.callBytes[i] = 0;
  }
  const call = a.calls[i];
  const args = c.arguments ?? '';
  if (offset > a.callBytes[i]) return GAP;
  const end = offset + byteLength(args);
  if (end <= a.callBytes[i] && known) return null;
  const fresh = end > a.callBytes[i] ? fromByte(args, a.callBytes[i] - offset) : '';
  a.callBytes[i] = Math.max(end, a.callBytes[i]);
  call.arguments += fresh;
  const d = { index: i, arguments: fresh };
  if (!known) Object.assign(d, { id: call.id, name: call.name });
  return { toolCall: d };
}

function userEvent(fr, seq) {
  const e = { seq, kind: fr.type === 'tool_result' ? 'tool_result' : 'user',
    time: new Date().toISOString(), turn_id: fr.turn_id, tokens: 0 };
  if (fr.type === 'tool_result') {
    e.text = fr.content ?? '';
    e.tool_call_id = fr.tool_call_id;
    if (fr.is_error) e.is_error = true;
  } else {
    e.text = fr.text;
  }
  return e;
}

function toolToWire(t) {
  const w = { name: String(t.name) };
  if (t.description) w.description = String(t.description);
  if (t.inputSchema ?? t.input_schema) w.input_schema = t.inputSchema ?? t.input_schema;
  return w;
}

function checkTurnId(id) {
  const n = typeof id === 'string' ? byteLength(id) : 0;
  if (n < 1 || n > MAX_TURN_ID_BYTES) {
    throw new StatedError(ClientCodes.INVALID, 'stated: turnId must be 1 to 128 bytes');
  }
  return id;
}

/** Returns a new random turn ID. */
export function newTurnId() {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  return 't-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Returns the WebSocket URL of the protocol's endpoint for a server address:
 * http(s) becomes ws(s), and a URL without a path gets /v1/ws.
 */
export function endpointURL(url) {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new StatedError(ClientCodes.INVALID, `stated: ${url} is not a ws, wss or http URL`);
  }
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/ws';
  return u.toString();
}

/**
 * Returns a function that trades an API key for a WebSocket ticket at the server
 * of the endpoint URL (POST /v1/tickets). A refused key is a StatedError
 * `unauthorized` or `forbidden` that no retry helps.
 */
export function ticketFetcher(endpoint, apiKey) {
  const u = new URL(endpoint);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = '/v1/tickets';
  u.search = '';
  return async () => {
    const res = await fetch(u, { method: 'POST', headers: { Authorization: `Bearer ${apiKey}` } });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401 || res.status === 403) {
      throw new StatedError(res.status === 401 ? 'unauthorized' : 'forbidden',
        `stated: ${body?.error?.message ?? res.statusText}`, { retry: false });
    }
    if (!res.ok || typeof body.ticket !== 'string') {
      throw new StatedError(ClientCodes.UNREACHABLE, `stated: ticket: HTTP ${res.status}`);
    }
    return body.ticket;
  };
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function now() {
  return globalThis.performance?.now() ?? Date.now();
}
