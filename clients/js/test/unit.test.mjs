// Unit tests of the client's bookkeeping against an in-memory fake WebSocket
// (FakeWebSocket, for these tests only): byte offsets of multi-byte text, partials
// that overlap what was received, gaps, close codes. The live tests are in
// client.test.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { openSession, resumeSession, endpointURL, StatedError } from '../stated.js';
import { waitFor } from './helpers.mjs';

const T = { timeout: 30000 }; // no test may hang the run

// FakeWebSocket records what the client sends and lets a test play the server.
class FakeWebSocket {
  static all = [];

  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.all.push(this);
    queueMicrotask(() => this.#open());
  }

  static last() { return FakeWebSocket.all[FakeWebSocket.all.length - 1]; }

  #open() {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    this.onopen?.({});
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('fake: not open');
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000) { this.serverClose(code); }

  /** Delivers server frames in order. */
  deliver(...frames) {
    for (const f of frames) this.onmessage?.({ data: JSON.stringify(f) });
  }

  /** Ends the connection as the server or the network would. */
  serverClose(code) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code }));
  }
}

const opts = { url: 'ws://fake', WebSocket: FakeWebSocket, backoffInitialMs: 1 };

// started opens a session on a fake connection and returns it with that connection.
async function started() {
  const p = openSession(opts);
  const ws = FakeWebSocket.last();
  await waitFor(() => ws.sent.length === 1, 'the open frame');
  assert.deepEqual(ws.sent[0], { type: 'open' });
  ws.deliver({ type: 'session', seq: 0, session_id: 'sess1', epoch: 3, model: 'm' });
  return { s: await p, ws };
}

// reconnected cuts ws and returns the next fake connection once it has sent its
// resume frame.
async function reconnected(ws, code = 1006) {
  const before = FakeWebSocket.all.length;
  ws.serverClose(code);
  await waitFor(() => FakeWebSocket.all.length > before && FakeWebSocket.last().sent.length > 0,
    'the client to reconnect');
  return FakeWebSocket.last();
}

function pieces(turn) {
  const out = [];
  const done = (async () => { for await (const d of turn) out.push(d); })();
  return { out, done };
}

test('a partial that overlaps the pieces received passes on only new text, by bytes', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('hi', { turnId: 'u1' });
  const got = pieces(turn);
  await waitFor(() => ws.sent.length === 2, 'the turn');
  ws.deliver(
    { type: 'ack', seq: 1, turn_id: 'u1' },
    { type: 'delta', seq: 2, offset: 0, text: 'héllo ' },
    { type: 'delta', seq: 2, offset: 7, text: 'wörld' },
  );
  const ws2 = await reconnected(ws);
  assert.deepEqual(ws2.sent[0], { type: 'resume', session_id: 'sess1', epoch: 3, last_seq: 1 });
  const sofar = 'héllo wörld 🎉';
  ws2.deliver(
    { type: 'session', seq: 1, session_id: 'sess1', epoch: 3 },
    { type: 'partial', seq: 2, text: sofar },
    { type: 'delta', seq: 2, offset: 10, text: 'ld 🎉' }, // already in the partial
    { type: 'delta', seq: 2, offset: Buffer.byteLength(sofar), text: ' fin' },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: `${sofar} fin` } },
  );
  await got.done;
  assert.deepEqual(got.out.map((d) => d.text), ['héllo ', 'wörld', ' 🎉', ' fin']);
  assert.equal((await turn.answer).text, `${sofar} fin`);
  assert.equal(ws2.sent.length, 1, 'the acknowledged turn was sent again');
  s.close();
});

test('a piece past the end of what was received makes the client resume', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('hi', { turnId: 'u1' });
  const got = pieces(turn);
  await waitFor(() => ws.sent.length === 2, 'the turn');
  ws.deliver({ type: 'ack', seq: 1, turn_id: 'u1' }, { type: 'delta', seq: 2, text: 'ab' });
  ws.deliver({ type: 'delta', seq: 2, offset: 5, text: 'fgh' }); // cde is missing
  await waitFor(() => FakeWebSocket.last() !== ws && FakeWebSocket.last().sent.length > 0,
    'a resume');
  const ws2 = FakeWebSocket.last();
  ws2.deliver(
    { type: 'session', seq: 1, session_id: 'sess1', epoch: 3 },
    { type: 'partial', seq: 2, text: 'abcdefgh' },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: 'abcdefgh' } },
  );
  await got.done;
  assert.equal(got.out.map((d) => d.text).join(''), 'abcdefgh');
  s.close();
});

test('a stored answer longer than the pieces received is completed from the event', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('hi', { turnId: 'u1' });
  const got = pieces(turn);
  await waitFor(() => ws.sent.length === 2, 'the turn');
  ws.deliver({ type: 'ack', seq: 1, turn_id: 'u1' }, { type: 'delta', seq: 2, text: 'abc' });
  const ws2 = await reconnected(ws);
  ws2.deliver(
    { type: 'session', seq: 2, session_id: 'sess1', epoch: 3, missed: 1 },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: 'abcdef' } },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: 'abcdef' } },
  );
  await got.done;
  assert.deepEqual(got.out.map((d) => d.text), ['abc', 'def']);
  assert.deepEqual(s.history.map((e) => e.seq), [1, 2], 'an event was recorded twice');
  s.close();
});

test('a turn whose ack was lost is recognised in the catch-up and not sent again', T,
  async () => {
    const { s, ws } = await started();
    const turn = s.send('hi', { turnId: 'u1' });
    await waitFor(() => ws.sent.length === 2, 'the turn');
    const ws2 = await reconnected(ws);
    assert.equal(ws2.sent[0].type, 'resume');
    ws2.deliver(
      { type: 'session', seq: 1, session_id: 'sess1', epoch: 3, missed: 1 },
      { type: 'event', seq: 1, event: { seq: 1, kind: 'user', turn_id: 'u1', text: 'hi' } },
    );
    await waitFor(() => turn.acks.length === 1, 'the ack');
    assert.equal(ws2.sent.length, 1);
    ws2.deliver({ type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: 'yo' } });
    assert.equal(await turn.text(), 'yo');
    s.close();
  });

test('a turn not acknowledged before a cut is sent again under the same turn ID', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('hi', { turnId: 'u1' });
  await waitFor(() => ws.sent.length === 2, 'the turn');
  const ws2 = await reconnected(ws);
  ws2.deliver({ type: 'session', seq: 0, session_id: 'sess1', epoch: 3 });
  await waitFor(() => ws2.sent.length === 2, 'the turn again');
  assert.deepEqual(ws2.sent[1], { type: 'turn', turn_id: 'u1', text: 'hi' });
  ws2.deliver({ type: 'error', code: 'internal', message: 'x', retry: true, turn_id: 'u1' });
  await assert.rejects(turn.answer, { code: 'internal', retry: true, turnId: 'u1' });
  s.close();
});

test('tool call pieces are passed on once across a partial', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('weather?', { turnId: 'u1' });
  const got = pieces(turn);
  await waitFor(() => ws.sent.length === 2, 'the turn');
  ws.deliver(
    { type: 'ack', seq: 1, turn_id: 'u1' },
    { type: 'delta', seq: 2, tool_call: { index: 0, id: 'c1', name: 'wx', arguments: '{"ci' } },
  );
  const ws2 = await reconnected(ws);
  ws2.deliver(
    { type: 'session', seq: 1, session_id: 'sess1', epoch: 3 },
    { type: 'partial', seq: 2, text: '', tool_calls: [{ id: 'c1', name: 'wx', arguments: '{"city":' }] },
    { type: 'delta', seq: 2, offset: 8, tool_call: { index: 0, arguments: '"Paris"}' } },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: '',
      tool_calls: [{ id: 'c1', name: 'wx', arguments: '{"city":"Paris"}' }] } },
  );
  await got.done;
  const calls = got.out.map((d) => d.toolCall);
  assert.equal(calls.map((c) => c.arguments).join(''), '{"city":"Paris"}');
  assert.equal(calls[0].id, 'c1');
  assert.equal(calls[0].name, 'wx');
  assert.equal(calls.filter((c) => c.id).length, 1, 'the call was announced twice');
  s.close();
});

test('a close with 1009 fails the turn as frame_too_big and the session goes on', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('x'.repeat(100), { turnId: 'big' });
  await waitFor(() => ws.sent.length === 2, 'the turn');
  const ws2 = await reconnected(ws, 1009);
  await assert.rejects(turn.answer, { code: 'frame_too_big', retry: false, closeCode: 1009 });
  ws2.deliver({ type: 'session', seq: 0, session_id: 'sess1', epoch: 3 });
  await waitFor(() => s.state === 'open', 'the session to resume');
  assert.equal(ws2.sent.length, 1, 'the frame too big was sent again');
  s.close();
});

test('a snapshot replaces the history the client held', T, async () => {
  const p = resumeSession(opts, { sessionId: 'sess1', epoch: 2, lastSeq: 5 });
  const ws = FakeWebSocket.last();
  await waitFor(() => ws.sent.length === 1, 'the resume');
  ws.deliver(
    { type: 'session', seq: 2, session_id: 'sess1', epoch: 3, snapshot: true, missed: 2 },
    { type: 'event', seq: 1, event: { seq: 1, kind: 'user', text: 'a' } },
    { type: 'event', seq: 2, event: { seq: 2, kind: 'assistant', text: 'b' } },
  );
  const s = await p;
  assert.equal(s.epoch, 3);
  assert.equal(s.lastSeq, 2);
  assert.deepEqual(s.history.map((e) => e.text), ['a', 'b']);
  s.close();
});

test('a resume refused after a reconnect fails the session with the refusal', T, async () => {
  const { s, ws } = await started();
  const turn = s.send('hi', { turnId: 'u1' });
  await waitFor(() => ws.sent.length === 2, 'the turn');
  const ws2 = await reconnected(ws);
  ws2.deliver({ type: 'error', code: 'session_not_found', message: 'no such session' });
  await assert.rejects(turn.answer, { code: 'session_not_found', retry: false });
  assert.equal(s.state, 'failed');
  assert.equal(FakeWebSocket.last(), ws2, 'the client went on reconnecting');
});

test('a frame that is not JSON makes the client resume on a new connection', T, async () => {
  const { s, ws } = await started();
  ws.onmessage({ data: 'not json' });
  await waitFor(() => FakeWebSocket.last() !== ws, 'a new connection');
  assert.equal(FakeWebSocket.last().sent[0].type, 'resume');
  s.close();
});

test('endpointURL maps server addresses to the endpoint', T, () => {
  const cases = [
    ['ws://127.0.0.1:8080', 'ws://127.0.0.1:8080/v1/ws'],
    ['http://example.test', 'ws://example.test/v1/ws'],
    ['https://example.test/', 'wss://example.test/v1/ws'],
    ['wss://example.test/v1/ws?ticket=abc', 'wss://example.test/v1/ws?ticket=abc'],
  ];
  for (const [in_, want] of cases) assert.equal(endpointURL(in_), want, in_);
  assert.throws(() => endpointURL('ftp://x'), StatedError);
});
