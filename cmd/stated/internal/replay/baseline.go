package replay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// The baselines: the same conversations sent straight to the provider by a
// stateless client, which sends the whole conversation with every request.
const (
	// BaselineNaive sends no cache hints: Anthropic caches nothing; OpenAI still
	// caches on its own (it cannot be told not to), without a prompt_cache_key.
	BaselineNaive = "naive"
	// BaselineAuto follows each provider's own best practice for a stateless
	// client: Anthropic's request-level automatic cache_control, and for OpenAI a
	// stable prefix with a prompt_cache_key per system prompt and tools.
	BaselineAuto = "auto"
)

// baseline replays one conversation as a stateless client of one kind.
type baseline struct {
	kind     string
	opts     *Options
	conv     *Conversation
	provider providers.Provider
	req      providers.Request
	last     *providers.Response
	res      *Result
}

// newBaseline returns the stateless client of kind for c. Each kind has its own
// API key, so its cache is neither stated's nor the other kind's.
func newBaseline(kind string, opts *Options, c *Conversation) *baseline {
	key := opts.APIKey + "-" + kind
	var p providers.Provider
	if opts.Provider == "openai" {
		p = openai.New(openai.Config{BaseURL: opts.ProviderURL, APIKey: key})
	} else {
		p = anthropic.New(anthropic.Config{BaseURL: opts.ProviderURL, APIKey: key})
	}
	system, _ := c.system()
	if system == "" {
		system = opts.System
	}
	b := &baseline{kind: kind, opts: opts, conv: c, provider: p,
		res: &Result{Conversations: 1}}
	b.req.System = system
	for _, t := range c.wireTools() {
		b.req.Tools = append(b.req.Tools, providers.Tool{Name: t.Name,
			Description: t.Description, InputSchema: compactSchema(t.InputSchema)})
	}
	return b
}

// compactSchema drops insignificant white space, as the server does with the
// tools of a session, so both sides send the same tools.
func compactSchema(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{"type":"object","properties":{}}`)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// step plays step st with model and maxTokens, the stated session's.
func (b *baseline) step(ctx context.Context, st step, model string, maxTokens int) error {
	b.req.Model, b.req.MaxTokens = model, maxTokens
	if st.user != "" {
		if calls := b.pendingCalls(); len(calls) > 0 {
			b.res.Diverged++
			if err := b.results(ctx, calls, nil); err != nil {
				return err
			}
		}
		b.req.Messages = append(b.req.Messages, providers.Message{Role: providers.RoleUser,
			Text: st.user})
		return b.answer(ctx)
	}
	calls := b.pendingCalls()
	if len(calls) == 0 {
		b.res.Diverged++
		return nil
	}
	if len(calls) != len(st.results) {
		b.res.Diverged++
	}
	return b.results(ctx, calls, st.results)
}

func (b *baseline) results(ctx context.Context, calls []providers.ToolCall,
	recorded []ChatMessage) error {
	for i, c := range calls {
		b.req.Messages = append(b.req.Messages, providers.Message{Role: providers.RoleTool,
			ToolCallID: c.ID, Text: recordedResult(recorded, i)})
	}
	return b.answer(ctx)
}

func (b *baseline) pendingCalls() []providers.ToolCall {
	if b.last == nil || b.last.Status != providers.StatusComplete {
		return nil
	}
	return b.last.ToolCalls
}

// answer sends the whole conversation, retrying an answer that failed, and adds
// the answer to the conversation.
func (b *baseline) answer(ctx context.Context) error {
	b.req.Cache = b.cachePlan()
	var resp *providers.Response
	var err error
	for try := 0; try <= b.opts.Retries; try++ {
		b.res.ClientBytesSent += int64(b.bodySize())
		resp, err = b.provider.Complete(ctx, &b.req, func(providers.Delta) {})
		if resp != nil {
			b.book(resp)
		}
		if err == nil && resp.Status == providers.StatusComplete {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s baseline: %w", b.kind, err)
	}
	b.last = resp
	if resp.Status != providers.StatusComplete {
		return fmt.Errorf("%s baseline: answer %s", b.kind, resp.Status)
	}
	if resp.Text != "" || len(resp.ToolCalls) > 0 {
		b.req.Messages = append(b.req.Messages, providers.Message{
			Role: providers.RoleAssistant, Text: resp.Text, ToolCalls: resp.ToolCalls})
	}
	b.res.Turns++
	return nil
}

// cachePlan is the cache hints of the baseline's kind.
func (b *baseline) cachePlan() providers.CachePlan {
	if b.kind == BaselineNaive {
		return providers.CachePlan{}
	}
	if b.opts.Provider == "openai" {
		tools, _ := json.Marshal(b.req.Tools)
		sum := sha256.Sum256(append([]byte(b.req.System+"\x00"), tools...))
		return providers.CachePlan{Key: "replay-" + hex.EncodeToString(sum[:8])}
	}
	return providers.CachePlan{Auto: true}
}

// bodySize is the size of the request body the client sends.
func (b *baseline) bodySize() int {
	var body []byte
	var err error
	if b.opts.Provider == "openai" {
		body, err = openai.MarshalRequest(&b.req)
	} else {
		body, err = anthropic.MarshalRequest(&b.req)
	}
	if err != nil {
		return 0
	}
	return len(body)
}

func (b *baseline) book(resp *providers.Response) {
	u := resp.Usage
	b.res.addUsage(u.InputTokens, u.CacheWriteTokens(), u.CacheReadTokens, u.OutputTokens)
	cost, err := b.opts.Prices.Cost(b.req.Model, finops.Tokens{Input: u.InputTokens,
		CacheWrite5m: u.CacheWrite5mTokens, CacheWrite1h: u.CacheWrite1hTokens,
		CacheRead: u.CacheReadTokens, Output: u.OutputTokens})
	if err == nil {
		b.res.CostUSD += cost
	}
}
