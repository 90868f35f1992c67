package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stated-dev/stated/transport/client"
	"github.com/stated-dev/stated/transport/wire"
)

// Options configure a replay.
type Options struct {
	Servers     []string // WebSocket URLs; the client moves on when one goes away
	System      string   // system prompt of conversations that have none
	Model       string   // model of the sessions; empty: the server's default
	MaxTokens   int      // max_tokens of the sessions; 0: the server's default
	Concurrency int      // conversations played at once; default 1
	// Retries is how many times an answer that failed or was cut is asked for
	// again before the turn counts as an error. Default 2.
	Retries  int
	Progress io.Writer // one line per conversation; nil: quiet
}

// Percentiles of a distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is what a replay measured. Token counts are the provider-reported usage
// summed over every answer.
type Result struct {
	Conversations int `json:"conversations"`
	// Turns is the number of answers received (assistant messages answered).
	Turns  int `json:"turns"`
	Errors int `json:"errors"`
	// Diverged counts places where the answer did not take the recorded path (tool
	// calls where the recording had none, or the reverse), so recorded tool
	// results could not be sent as they were.
	Diverged int `json:"diverged"`
	// ClientBytesSent is the WebSocket payload the replay's clients sent.
	ClientBytesSent int64 `json:"client_bytes_sent"`
	// StatelessClientBytes is what a stateless client would have sent for the same
	// requests: full OpenAI chat request bodies with the whole history each time.
	StatelessClientBytes int64 `json:"stateless_client_bytes"`

	InputTokens       int     `json:"input_tokens"` // all prompt tokens
	CachedInputTokens int     `json:"cached_input_tokens"`
	CacheWriteTokens  int     `json:"cache_write_tokens"`
	UncachedTokens    int     `json:"uncached_input_tokens"`
	OutputTokens      int     `json:"output_tokens"`
	CachedShare       float64 `json:"cached_share"`
	CostUSD           float64 `json:"cost_usd"`

	// AddedMS is the time the server added to a turn before calling the provider.
	AddedMS      Percentiles `json:"added_ms"`
	FirstTokenMS Percentiles `json:"first_token_ms"`
	Reconnects   int         `json:"reconnects"`
	WallSeconds  float64     `json:"wall_seconds"`

	// Sessions are the IDs of the sessions the replay opened, in no order.
	Sessions []string `json:"-"`

	added, firstToken []float64
	errs              []string
}

// ErrorSamples returns up to n error descriptions, for the report.
func (r *Result) ErrorSamples(n int) []string {
	if len(r.errs) < n {
		n = len(r.errs)
	}
	return r.errs[:n]
}

// Run plays every conversation and returns the totals. It fails only when ctx ends;
// failures of single conversations are counted in Errors.
func Run(ctx context.Context, opts Options, convs []Conversation) (*Result, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.Retries == 0 {
		opts.Retries = 2
	}
	start := time.Now()
	res := &Result{}
	var mu sync.Mutex // guards res
	work := make(chan *Conversation)
	var wg sync.WaitGroup
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				one := play(ctx, &opts, c)
				mu.Lock()
				res.merge(one)
				if opts.Progress != nil {
					fmt.Fprintf(opts.Progress, "replay: %s: %d answers, %d errors\n",
						c.ID, one.Turns, one.Errors)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range convs {
		select {
		case work <- &convs[i]:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.finish(time.Since(start))
	return res, nil
}

func (r *Result) merge(o *Result) {
	r.Conversations += o.Conversations
	r.Turns += o.Turns
	r.Errors += o.Errors
	r.Diverged += o.Diverged
	r.ClientBytesSent += o.ClientBytesSent
	r.StatelessClientBytes += o.StatelessClientBytes
	r.InputTokens += o.InputTokens
	r.CachedInputTokens += o.CachedInputTokens
	r.CacheWriteTokens += o.CacheWriteTokens
	r.UncachedTokens += o.UncachedTokens
	r.OutputTokens += o.OutputTokens
	r.CostUSD += o.CostUSD
	r.Reconnects += o.Reconnects
	r.added = append(r.added, o.added...)
	r.firstToken = append(r.firstToken, o.firstToken...)
	r.errs = append(r.errs, o.errs...)
	r.Sessions = append(r.Sessions, o.Sessions...)
}

func (r *Result) finish(wall time.Duration) {
	r.WallSeconds = wall.Seconds()
	if r.InputTokens > 0 {
		r.CachedShare = float64(r.CachedInputTokens) / float64(r.InputTokens)
	}
	r.AddedMS = percentiles(r.added)
	r.FirstTokenMS = percentiles(r.firstToken)
}

func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// player replays one conversation.
type player struct {
	opts      *Options
	conv      *Conversation
	sess      *client.Session
	res       *Result
	stateless *statelessBody
	last      *wire.Event // the last answer
}

func play(ctx context.Context, opts *Options, c *Conversation) *Result {
	p := &player{opts: opts, conv: c, res: &Result{Conversations: 1}}
	if err := p.run(ctx); err != nil {
		p.fail(err)
	}
	if p.sess != nil {
		st := p.sess.Stats()
		p.res.ClientBytesSent = st.BytesSent
		p.res.Reconnects = st.Reconnects
		p.sess.Close()
	}
	return p.res
}

func (p *player) fail(err error) {
	p.res.Errors++
	p.res.errs = append(p.res.errs, fmt.Sprintf("%s: %v", p.conv.ID, err))
}

func (p *player) run(ctx context.Context) error {
	system, msgs := p.conv.system()
	if system == "" {
		system = p.opts.System
	}
	sess, err := client.Open(ctx, client.Config{Servers: p.opts.Servers}, client.Settings{
		Model: p.opts.Model, System: system, Tools: p.conv.wireTools(),
		MaxTokens: p.opts.MaxTokens,
	})
	if err != nil {
		return err
	}
	p.sess = sess
	p.res.Sessions = append(p.res.Sessions, sess.ID())
	p.stateless = newStatelessBody(p.opts.Model, system, p.conv.Tools)

	for i := 0; i < len(msgs); {
		switch msgs[i].Role {
		case "user":
			if err := p.user(ctx, string(msgs[i].Content)); err != nil {
				return err
			}
			i++
		case "tool":
			j := i
			for j < len(msgs) && msgs[j].Role == "tool" {
				j++
			}
			if err := p.tools(ctx, msgs[i:j]); err != nil {
				return err
			}
			i = j
		default: // the recorded answer: the server gives its own
			i++
		}
	}
	return nil
}

// user sends a user turn. If the last answer asked for tools that the recording
// did not answer, it first answers them with a stand-in result.
func (p *player) user(ctx context.Context, text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
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
		content := "(no result recorded)"
		if i < len(recorded) {
			content = string(recorded[i].Content)
		}
		results[i] = client.ToolResult{ToolCallID: c.ID, Content: content}
		p.stateless.add(chatMsg{Role: "tool", ToolCallID: c.ID, Content: content})
	}
	return p.answer(ctx, func(ctx context.Context) (*wire.Event, error) {
		return p.sess.SendToolResults(ctx, results, nil)
	})
}

// answer runs one request, retrying an answer that failed or was cut, and books
// the result.
func (p *player) answer(ctx context.Context, send func(context.Context) (*wire.Event, error)) error {
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
		prompt := u.InputTokens + u.CacheReadTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens
		p.res.InputTokens += prompt
		p.res.CachedInputTokens += u.CacheReadTokens
		p.res.CacheWriteTokens += u.CacheWrite5mTokens + u.CacheWrite1hTokens
		p.res.UncachedTokens += u.InputTokens
		p.res.OutputTokens += u.OutputTokens
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

func (b *statelessBody) size() int {
	data, err := json.Marshal(b)
	if err != nil {
		return 0
	}
	return len(data)
}
