package replay

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stated-dev/stated/transport/client"
	"github.com/stated-dev/stated/transport/wire"
)

// player replays one conversation against the stated server, one step at a time.
type player struct {
	opts      *Options
	conv      *Conversation
	presets   *presetBook
	sess      *client.Session
	res       *Result
	stateless *statelessBody
	last      *wire.Event // the last answer
	// turns are the bytes clients sent at each step: this session's, and what a
	// stateless client would have sent.
	turns []TurnBytes
	// requests are the stateless requests of the steps, for the ceiling, and
	// outputs the output tokens of each step's answers.
	requests [][]chatMsg
	outputs  []int
	// sent is the stateless request of the step in progress, as first sent.
	sent []chatMsg
}

func newPlayer(opts *Options, c *Conversation, presets *presetBook) *player {
	return &player{opts: opts, conv: c, presets: presets, res: &Result{Conversations: 1}}
}

func (p *player) fail(err error) {
	p.res.Errors++
	p.res.errs = append(p.res.errs, fmt.Sprintf("%s: %v", p.conv.ID, err))
}

// open opens the session: by a preset holding the conversation's system prompt
// and tools (one preset per distinct pair, registered once per run), so the open
// frame carries neither.
func (p *player) open(ctx context.Context) error {
	system, _ := p.conv.system()
	if system == "" {
		system = p.opts.System
	}
	tools := p.conv.wireTools()
	st := client.Settings{Model: p.opts.Model, MaxTokens: p.opts.MaxTokens}
	if p.presets != nil {
		name, err := p.presets.register(ctx, system, tools)
		if err != nil {
			return err
		}
		st.Preset = name
	} else {
		st.System, st.Tools = system, tools
	}
	sess, err := client.Open(ctx, client.Config{Servers: p.opts.Servers, Header: p.opts.Header},
		st)
	if err != nil {
		return err
	}
	p.sess = sess
	p.res.refs = append(p.res.refs, sessionRef{ID: sess.ID(), Epoch: sess.Epoch()})
	p.stateless = newStatelessBody(sess.Model(), system, p.conv.Tools)
	return nil
}

// step plays step i. The bytes the session sends for it, the open frame included
// at the first, are booked to turn i+1.
func (p *player) step(ctx context.Context, i int, st step) error {
	if p.sess == nil {
		if err := p.open(ctx); err != nil {
			return err
		}
	}
	before := p.sess.Stats().BytesSent
	output := p.res.OutputTokens
	p.sent = nil
	var err error
	if st.user != "" {
		err = p.user(ctx, st.user)
	} else {
		err = p.tools(ctx, st.results)
	}
	tb := TurnBytes{Turn: i + 1, StatedBytes: p.sess.Stats().BytesSent - before}
	if p.sent != nil {
		tb.StatelessBytes = int64(p.stateless.sizeOf(p.sent))
		p.requests = append(p.requests, p.sent)
		p.outputs = append(p.outputs, p.res.OutputTokens-output)
	}
	p.turns = append(p.turns, tb)
	return err
}

// close ends the replay of the conversation: the session stays on the server.
func (p *player) close() {
	if p.sess == nil {
		return
	}
	st := p.sess.Stats()
	p.res.ClientBytesSent = st.BytesSent
	p.res.Reconnects = st.Reconnects
	p.sess.Close()
}

// user sends a user turn. If the last answer asked for tools that the recording
// did not answer, it first answers them with a stand-in result.
func (p *player) user(ctx context.Context, text string) error {
	if calls := p.pendingCalls(); len(calls) > 0 {
		p.res.Diverged++
		if err := p.sendResults(ctx, calls, nil); err != nil {
			return err
		}
	}
	p.stateless.add(chatMsg{Role: "user", Content: text})
	return p.answer(ctx, func(ctx context.Context) (*wire.Event, error) {
		return p.sess.Ask(ctx, text, nil)
	})
}

// tools sends recorded tool results, matched by position to the tool calls of the
// last answer.
func (p *player) tools(ctx context.Context, recorded []ChatMessage) error {
	calls := p.pendingCalls()
	if len(calls) == 0 {
		p.res.Diverged++
		return nil
	}
	if len(calls) != len(recorded) {
		p.res.Diverged++
	}
	return p.sendResults(ctx, calls, recorded)
}

func (p *player) sendResults(ctx context.Context, calls []wire.ToolCall,
	recorded []ChatMessage) error {
	results := make([]client.ToolResult, len(calls))
	for i, c := range calls {
		content := recordedResult(recorded, i)
		results[i] = client.ToolResult{ToolCallID: c.ID, Content: content}
		p.stateless.add(chatMsg{Role: "tool", ToolCallID: c.ID, Content: content})
	}
	return p.answer(ctx, func(ctx context.Context) (*wire.Event, error) {
		return p.sess.SendToolResults(ctx, results, nil)
	})
}

// recordedResult is the recorded result of call i, or a stand-in.
func recordedResult(recorded []ChatMessage, i int) string {
	if i < len(recorded) {
		return string(recorded[i].Content)
	}
	return "(no result recorded)"
}

// answer runs one request, retrying an answer that failed or was cut, and books
// the result.
func (p *player) answer(ctx context.Context,
	send func(context.Context) (*wire.Event, error)) error {
	p.sent = append([]chatMsg(nil), p.stateless.Messages...) // the step's last request
	p.res.StatelessClientBytes += int64(p.stateless.size())
	ans, err := send(ctx)
	for try := 0; err == nil && ans.Status != "complete" && try < p.opts.Retries; try++ {
		p.book(ans)
		p.res.StatelessClientBytes += int64(p.stateless.size())
		ans, err = p.sess.Retry(ctx, nil)
	}
	if err != nil {
		return err
	}
	p.book(ans)
	p.last = ans
	if ans.Status != "complete" {
		return fmt.Errorf("answer %d %s: %s", ans.Seq, ans.Status, ans.ErrorCode)
	}
	p.stateless.addAnswer(ans)
	p.res.Turns++
	return nil
}

func (p *player) book(ans *wire.Event) {
	if u := ans.Usage; u != nil {
		p.res.addUsage(u.InputTokens, u.CacheWrite5mTokens+u.CacheWrite1hTokens,
			u.CacheReadTokens, u.OutputTokens)
	}
	p.res.CostUSD += ans.CostUSD
	if t := ans.Timing; t != nil {
		p.res.added = append(p.res.added, t.AddedMS)
		p.res.firstToken = append(p.res.firstToken, t.FirstTokenMS)
	}
}

func (p *player) pendingCalls() []wire.ToolCall {
	if p.last == nil || p.last.Status != "complete" {
		return nil
	}
	return p.last.ToolCalls
}

// statelessBody is the request a stateless OpenAI chat client would send: the whole
// conversation every time.
type statelessBody struct {
	Model    string     `json:"model"`
	Messages []chatMsg  `json:"messages"`
	Tools    []ChatTool `json:"tools,omitempty"`
	Stream   bool       `json:"stream"`
}

type chatMsg struct {
	Role       string         `json:"role"`
	Content    any            `json:"content"`
	ToolCalls  []ChatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

func newStatelessBody(model, system string, tools []ChatTool) *statelessBody {
	b := &statelessBody{Model: model, Tools: tools, Stream: true}
	if b.Model == "" {
		b.Model = "default"
	}
	if system != "" {
		b.Messages = append(b.Messages, chatMsg{Role: "system", Content: system})
	}
	return b
}

func (b *statelessBody) add(m chatMsg) { b.Messages = append(b.Messages, m) }

func (b *statelessBody) addAnswer(e *wire.Event) {
	m := chatMsg{Role: "assistant", Content: e.Text}
	if e.Text == "" {
		m.Content = nil
	}
	for _, c := range e.ToolCalls {
		tc := ChatToolCall{ID: c.ID, Type: "function"}
		tc.Function.Name, tc.Function.Arguments = c.Name, c.Arguments
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	b.add(m)
}

func (b *statelessBody) size() int { return b.sizeOf(b.Messages) }

// sizeOf is the size of the body holding msgs.
func (b *statelessBody) sizeOf(msgs []chatMsg) int {
	c := *b
	c.Messages = msgs
	data, err := json.Marshal(&c)
	if err != nil {
		return 0
	}
	return len(data)
}
