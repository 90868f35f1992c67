// The client against a live stated server: real processes, real WebSockets.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { openSession, resumeSession, StatedError, newTurnId } from '../stated.js';
import {
  startServer, startSlowServer, startAuthServer, startProxy, waitFor,
} from './helpers.mjs';

const T = { timeout: 30000 }; // no test may hang the run

let fast; // a server with the in-process simulator
let slow; // a server whose simulator answers slowly
let slower; // one slower still, whose answers outlast several reconnections
let authed; // a server that requires API keys, with a tenant's key

before(async () => {
  [fast, slow, slower, authed] = await Promise.all([startServer(), startSlowServer(),
    startSlowServer({ tokensPerSecond: 6 }), startAuthServer()]);
});

after(async () => {
  await Promise.all([fast?.stop(), slow?.stop(), slower?.stop(), authed?.stop()]);
});

// collect iterates a turn and returns its pieces and the answer.
async function collect(turn, onPiece = () => {}) {
  const pieces = [];
  for await (const d of turn) {
    pieces.push(d);
    await onPiece(d, pieces.length);
  }
  return { pieces, text: pieces.map((d) => d.text ?? '').join(''), answer: await turn.answer };
}

// readLog reads a session's whole log with a fresh client.
async function readLog(url, sessionId) {
  const s = await resumeSession({ url }, { sessionId });
  s.close();
  return s.history;
}

test('a turn streams its answer in pieces that add up to the stored answer', T, async () => {
  const s = await openSession({ url: fast.url });
  try {
    assert.match(s.id, /^[a-z0-9]{16,}$/);
    assert.equal(s.state, 'open');
    const turn = s.send('What does the server keep?');
    const { pieces, text, answer } = await collect(turn);
    assert.ok(pieces.length > 1, `expected several pieces, got ${pieces.length}`);
    assert.equal(answer.kind, 'assistant');
    assert.equal(answer.status, 'complete');
    assert.equal(text, answer.text);
    assert.equal(turn.acks.length, 1);
    assert.equal(turn.acks[0].duplicate, false);
    assert.deepEqual(s.history.map((e) => e.kind), ['user', 'assistant']);
    assert.equal(s.lastSeq, 2);
    assert.ok(answer.usage.output_tokens > 0);
  } finally {
    s.close();
  }
});

test('a resumed session reads the log another client wrote', T, async () => {
  const a = await openSession({ url: fast.url }, { system: 'Be brief.', maxTokens: 300 });
  const { answer } = await collect(a.send('first'));
  a.close();
  const b = await resumeSession({ url: fast.url }, { sessionId: a.id, epoch: a.epoch });
  try {
    assert.equal(b.maxTokens, 300);
    assert.deepEqual(b.history.map((e) => [e.seq, e.kind]), [[1, 'user'], [2, 'assistant']]);
    assert.equal(b.history[1].text, answer.text);
    const second = await collect(b.send('second'));
    assert.equal(second.answer.seq, 4);
  } finally {
    b.close();
  }
});

// deltasSeen counts the delta frames that passed a proxy from the server.
const deltasSeen = (proxy) => proxy.state.seen.split('"type":"delta"').length - 1;

test('connections cut in the middle of an answer lose and repeat no text', T, async () => {
  const proxy = await startProxy(slower.addr);
  const s = await openSession({ url: `ws://${proxy.addr}/v1/ws`, backoffInitialMs: 20 });
  const states = [];
  s.addEventListener('state', (e) => states.push(e.detail));
  try {
    let cuts = 0;
    // After each of the first two pieces, the next pieces are lost on the way and
    // then the connection is cut: the partial after the resume holds text the
    // client has and text it never got.
    const { text, answer } = await collect(s.send('Tell me a long story.'), async (_, n) => {
      if (n > 2 || cuts >= n || !s.inflight) return;
      cuts++;
      const seen = deltasSeen(proxy);
      proxy.dropDownstream(true);
      await waitFor(() => deltasSeen(proxy) > seen || !s.inflight, 'the answer to go on');
      proxy.cutAll();
      proxy.dropDownstream(false);
    });
    assert.equal(cuts, 2);
    assert.ok(states.includes('reconnecting'), `states: ${states}`);
    assert.ok(proxy.saw('"type":"partial"'), 'no resume happened in the middle of the answer');
    assert.equal(answer.status, 'complete');
    assert.equal(text, answer.text, 'pieces do not add up to the answer');
    const log = await readLog(`ws://${slower.addr}`, s.id);
    assert.deepEqual(log.map((e) => e.kind), ['user', 'assistant']);
    assert.deepEqual(s.history.map((e) => e.seq), [1, 2]);
  } finally {
    s.close();
    await proxy.close();
  }
});

test('session delta events also add up to the answer across a cut', T, async () => {
  const proxy = await startProxy(slow.addr);
  const s = await openSession({ url: `ws://${proxy.addr}`, backoffInitialMs: 20 });
  let streamed = '';
  s.addEventListener('delta', (e) => { streamed += e.detail.text ?? ''; });
  try {
    const turn = s.send('Another story, please.');
    await waitFor(() => streamed.length > 0, 'the first piece');
    proxy.cutAll();
    const answer = await turn.answer;
    assert.equal(streamed, answer.text);
  } finally {
    s.close();
    await proxy.close();
  }
});

// A turn whose frame never reached the server, or whose ack never reached the
// client, is sent again under the same turn ID and run once.
for (const [name, lose] of [
  ['a turn lost on the way to the server is sent again and run once', 'up'],
  ['a turn whose ack was lost is not run twice', 'down'],
]) {
  test(name, T, async () => {
    const proxy = await startProxy(slow.addr);
    const s = await openSession({ url: `ws://${proxy.addr}`, backoffInitialMs: 20 });
    try {
      if (lose === 'up') proxy.holdUpstream(true);
      else proxy.dropDownstream(true);
      const turnId = newTurnId();
      const turn = s.send('Are you there?', { turnId });
      if (lose === 'down') await waitFor(() => proxy.saw(turnId), 'the ack to pass the proxy');
      else await waitFor(() => proxy.state.dropped > 0, 'the turn to reach the proxy');
      proxy.holdUpstream(false);
      proxy.dropDownstream(false);
      proxy.cutAll();
      const { text, answer } = await collect(turn);
      assert.equal(text, answer.text);
      const log = await readLog(`ws://${slow.addr}`, s.id);
      assert.deepEqual(log.map((e) => [e.kind, e.turn_id ?? '']),
        [['user', turnId], ['assistant', '']]);
      assert.ok(proxy.state.connections >= 2);
    } finally {
      s.close();
      await proxy.close();
    }
  });
}

test('a turn sent again under its turn ID returns the first answer', T, async () => {
  const s = await openSession({ url: fast.url });
  try {
    const turnId = newTurnId();
    const first = await collect(s.send('once', { turnId }));
    const again = s.send('once', { turnId });
    const answer = await again.answer;
    assert.equal(again.acks[0].duplicate, true);
    assert.equal(answer.seq, first.answer.seq);
    assert.equal(s.lastSeq, 2);
  } finally {
    s.close();
  }
});

test('a turn sent while another answer runs waits for it and is then answered', T, async () => {
  const a = await openSession({ url: `ws://${slow.addr}` });
  const b = await resumeSession({ url: `ws://${slow.addr}` }, { sessionId: a.id });
  try {
    const ta = a.send('first question');
    await waitFor(() => a.inflight !== null, 'the first answer to start');
    const tb = b.send('second question');
    const [ra, rb] = await Promise.all([collect(ta), collect(tb)]);
    assert.equal(ra.answer.seq, 2);
    assert.equal(rb.answer.seq, 4);
    assert.equal(rb.text, rb.answer.text);
    assert.deepEqual(b.history.map((e) => e.kind), ['user', 'assistant', 'user', 'assistant']);
  } finally {
    a.close();
    b.close();
  }
});

test('cancel stops the answer, which is stored as aborted', T, async () => {
  const s = await openSession({ url: `ws://${slow.addr}` }, { maxTokens: 4000 });
  try {
    const turn = s.send('Say a lot.');
    const { text, answer } = await collect(turn, (_, n) => { if (n === 1) turn.cancel(); });
    assert.equal(answer.status, 'aborted');
    assert.equal(answer.error_code, 'cancelled');
    assert.equal(text, answer.text);
  } finally {
    s.close();
  }
});

test('errors are StatedErrors with a code and whether a retry helps', T, async (t) => {
  const s = await openSession({ url: fast.url });
  t.after(() => s.close());
  const cases = [
    ['an unknown session is session_not_found',
      () => resumeSession({ url: fast.url }, { sessionId: 'nosuchsession' }),
      { code: 'session_not_found', retry: false }],
    ['a tool result for no call is unknown_tool_call',
      () => s.sendToolResults([{ toolCallId: 'toolu_none', content: 'x', turnId: 'tr-1' }]).answer,
      { code: 'unknown_tool_call', retry: false, turnId: 'tr-1' }],
    ['a max_tokens over the limit is invalid',
      () => openSession({ url: fast.url }, { maxTokens: 10_000_000 }),
      { code: 'invalid', retry: false }],
    ['an empty turn is refused before it is sent', async () => s.send(''),
      { code: 'empty_turn', retry: false }],
    ['a turn ID over 128 bytes is refused', async () => s.send('x', { turnId: 'x'.repeat(129) }),
      { code: 'invalid', retry: false }],
    ['a server that does not answer is unreachable', () => openSession(
      { url: 'ws://127.0.0.1:9', reconnectForMs: 200, backoffInitialMs: 20 }),
    { code: 'unreachable', retry: true }],
  ];
  for (const [name, run, want] of cases) {
    await t.test(name, async () => {
      await assert.rejects(run, (err) => {
        assert.ok(err instanceof StatedError, `not a StatedError: ${err}`);
        for (const [k, v] of Object.entries(want)) assert.equal(err[k], v, k);
        return true;
      });
    });
  }
});

test('a second turn while one runs is turn_in_progress', T, async () => {
  const s = await openSession({ url: `ws://${slow.addr}` });
  try {
    const first = s.send('one');
    assert.throws(() => s.send('two'), { name: 'StatedError', code: 'turn_in_progress' });
    await first.answer;
  } finally {
    s.close();
  }
});

test('a ping is answered by a pong', T, async () => {
  const s = await openSession({ url: fast.url });
  try {
    const rtt = await s.ping();
    assert.ok(rtt >= 0 && rtt < 5000);
  } finally {
    s.close();
  }
});

test('a connection that stops answering pings is dropped and resumed', T, async () => {
  const proxy = await startProxy(fast.addr);
  const s = await openSession({ url: `ws://${proxy.addr}`, pingIntervalMs: 100,
    pongTimeoutMs: 200, backoffInitialMs: 20 });
  try {
    proxy.dropDownstream(true); // the connection stays up but nothing comes back
    await waitFor(() => s.state === 'reconnecting', 'the client to notice');
    proxy.dropDownstream(false);
    await waitFor(() => s.state === 'open', 'the client to resume');
    const { text, answer } = await collect(s.send('still there?'));
    assert.equal(text, answer.text);
  } finally {
    s.close();
    await proxy.close();
  }
});

test('close fails the running turn with closed', T, async () => {
  const s = await openSession({ url: `ws://${slow.addr}` });
  const turn = s.send('hello');
  s.close();
  await assert.rejects(turn.answer, { name: 'StatedError', code: 'closed', retry: false });
  assert.equal(s.state, 'closed');
});

test('a client with an API key connects through single-use tickets', T, async () => {
  const s = await openSession({ url: authed.url, apiKey: authed.key, backoffInitialMs: 20 });
  try {
    const first = await collect(s.send('hello'));
    assert.equal(first.text, first.answer.text);
    const proxy = await startProxy(authed.addr);
    const again = await resumeSession({ url: `ws://${proxy.addr}`, apiKey: authed.key,
      backoffInitialMs: 20 }, { sessionId: s.id });
    proxy.cutAll(); // the reconnect needs a new ticket: the first was used up
    await waitFor(() => again.state === 'open' && proxy.state.connections >= 2, 'a reconnect');
    assert.equal((await collect(again.send('again'))).answer.seq, 4);
    again.close();
    await proxy.close();
  } finally {
    s.close();
  }
});

test('a refused API key fails the session as unauthorized', T, async () => {
  await assert.rejects(openSession({ url: authed.url, apiKey: 'sk-stated-wrong' }),
    { name: 'StatedError', code: 'unauthorized', retry: false });
});
