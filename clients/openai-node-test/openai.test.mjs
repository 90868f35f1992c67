// The official `openai` npm package against a live stated server, configured as a
// user would configure it: a base URL and a key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';
import { Stated, recordingFetch, longSystem } from './stated.mjs';

const model = 'gpt-4.1';
const system = longSystem();
const server = new Stated();
let bodies = [];

before(async () => {
  server.build();
  await server.start();
});

after(async () => {
  await server.close();
});

function client() {
  bodies = [];
  return new OpenAI({ baseURL: server.baseURL, apiKey: 'sk-test', maxRetries: 0,
    fetch: recordingFetch(bodies) });
}

test('a stateless chat client reads the cache of its previous request', async () => {
  const c = client();
  const messages = [{ role: 'system', content: system }, { role: 'user', content: 'Hello there.' }];
  const first = await c.chat.completions.create({ model, messages }).withResponse();
  const sid = first.response.headers.get('x-stated-session');
  assert.ok(sid, 'the answer names its session');
  assert.ok(first.data.choices[0].message.content.length > 0);

  messages.push(first.data.choices[0].message, { role: 'user', content: 'And then?' });
  const second = await c.chat.completions
    .create({ model, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  let text = '';
  let usage = null;
  let finish = null;
  for await (const chunk of second.data) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.equal(second.response.headers.get('x-stated-session'), sid);
  assert.ok(text.length > 0, 'the stream carried text');
  assert.equal(finish, 'stop');
  assert.ok(usage, 'the stream ended with a usage chunk');
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0, 'the second request read the cache');
  assert.ok(usage.prompt_tokens > usage.prompt_tokens_details.cached_tokens);
});

test('a client that names its session sends only the new message', async () => {
  const c = client();
  const first = await c.chat.completions
    .create({ model, messages: [{ role: 'user', content: 'First question.' }] })
    .withResponse();
  const sid = first.response.headers.get('x-stated-session');
  const second = await c.chat.completions
    .create({ model, messages: [{ role: 'user', content: 'Second question.' }] },
      { headers: { 'X-Stated-Session': sid } })
    .withResponse();
  assert.equal(second.response.headers.get('x-stated-session'), sid);
  assert.ok(second.data.usage.prompt_tokens > first.data.usage.prompt_tokens,
    'the second answer saw the first turn');
  assert.ok(!bodies.at(-1).body.includes('First question.'));
});

test('responses chain on previous_response_id, sending only the new input', async () => {
  const c = client();
  const r1 = await c.responses.create({ model, instructions: 'Be brief.',
    input: 'Pick a number.' });
  assert.equal(r1.status, 'completed');
  assert.ok(r1.output_text.length > 0);

  const stream = await c.responses.create({ model, instructions: 'Be brief.', input: 'Double it.',
    previous_response_id: r1.id, stream: true });
  const types = [];
  let r2 = null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.completed') r2 = ev.response;
  }
  assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);
  assert.ok(types.includes('response.output_text.delta'));
  assert.equal(r2.previous_response_id, r1.id);
  assert.ok(r2.usage.input_tokens > r1.usage.input_tokens, 'the chained answer saw turn one');

  const sent = bodies.at(-1).body;
  assert.ok(!sent.includes('Pick a number.') && !sent.includes(r1.output_text));
  assert.ok(sent.length < 300, `the chained request sent ${sent.length} bytes`);

  const got = await c.responses.retrieve(r2.id);
  assert.equal(got.output_text, r2.output[0].content[0].text);
});

test('the Responses WebSocket chain survives a dropped socket and a restart', async () => {
  const turn = (ws, body) => new Promise((resolve, reject) => {
    const onDone = (ev) => { cleanup(); resolve(ev.response); };
    const onError = (err) => { cleanup(); reject(err); };
    const cleanup = () => { ws.off('response.completed', onDone); ws.off('error', onError); };
    ws.on('response.completed', onDone);
    ws.on('error', onError);
    ws.send({ type: 'response.create', model, instructions: system, store: false, ...body });
  });

  let ws = new ResponsesWS(client());
  const r1 = await turn(ws, { input: 'Hello there.' });
  const r2 = await turn(ws, { input: 'Second.', previous_response_id: r1.id });
  assert.ok(r2.usage.input_tokens > r1.usage.input_tokens);
  ws.close();

  ws = new ResponsesWS(client());
  const r3 = await turn(ws, { input: 'Third.', previous_response_id: r2.id });
  assert.ok(r3.usage.input_tokens_details.cached_tokens > 0, 'a new socket reads the cache');
  assert.ok(r3.usage.input_tokens > r2.usage.input_tokens, 'a new socket keeps the chain');
  ws.close();

  await server.stop('SIGTERM');
  await server.start();
  ws = new ResponsesWS(client());
  const r4 = await turn(ws, { input: 'Fourth.', previous_response_id: r3.id });
  assert.equal(r4.status, 'completed');
  assert.ok(r4.usage.input_tokens > r3.usage.input_tokens, 'the chain survives a restart');
  ws.close();

  await assert.rejects(turnOn(new ResponsesWS(client()), turn, 'resp_nosuch'),
    (err) => err.error?.error?.code === 'previous_response_not_found');
});

async function turnOn(ws, turn, previous) {
  try {
    return await turn(ws, { input: 'hi', previous_response_id: previous });
  } finally {
    ws.close();
  }
}
