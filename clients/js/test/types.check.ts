// Compiled (not run) by `npm run typecheck`: the declarations in stated.d.ts must
// describe the documented usage without casts.
import {
  openSession, resumeSession, StatedError, Session, Turn, Delta, StatedEvent,
} from '../stated.js';

export async function usage(url: string): Promise<string> {
  const s: Session = await openSession({ url, reconnectForMs: 30000 },
    { model: 'claude-sonnet-4-5', maxTokens: 512, tools: [{ name: 't', inputSchema: {} }] });
  s.addEventListener('delta', (e) => { const d: Delta = e.detail; void d; });
  s.addEventListener('event', (e) => { const ev: StatedEvent = e.detail; void ev.cost_usd; });
  s.addEventListener('state', (e) => { if (e.detail === 'reconnecting') void 0; });
  const turn: Turn = s.send('hello');
  let text = '';
  for await (const d of turn) {
    if (d.text !== undefined) text += d.text;
    else void d.toolCall.arguments;
  }
  const answer = await turn.answer;
  const again = await resumeSession({ url, apiKey: 'sk-stated-x' },
    { sessionId: s.id, epoch: s.epoch });
  again.close();
  const later = Session.resume({ url, ticket: async () => 'tk_x' }, { sessionId: s.id });
  later.addEventListener('snapshot', () => {});
  await later.ready();
  const n: number = await later.ping();
  later.cancel();
  void n;
  try {
    await s.sendToolResults([{ toolCallId: 'x', content: 'y' }]).answer;
  } catch (err) {
    if (err instanceof StatedError && err.retry) return err.code;
  }
  return text + (answer.text ?? '') + String(answer.usage?.cache_read_tokens ?? 0);
}
