package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/storage"
)

// scriptProvider is an in-memory provider for the savings engine's unit tests.
// It answers a summary request with a short summary, a user turn "tools:N ..."
// (N > 0) with N parallel tool calls, and anything else with "answer " and the last
// message's text. Every request it gets is laid out by the real Anthropic and
// OpenAI adapters and checked by both pairing validators.
type scriptProvider struct {
	mu         sync.Mutex
	requests   []*providers.Request
	summaries  []*providers.Request
	violations []string
	// summaryGate, when set, holds every summary request until it is closed.
	summaryGate chan struct{}
}

func (f *scriptProvider) Name() string { return "script" }

func (f *scriptProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	f.check(req)
	resp := &providers.Response{Model: req.Model, Status: providers.StatusComplete,
		StopReason: providers.StopEnd, UsageReported: true}
	if req.System == summaryInstructions {
		f.mu.Lock()
		f.summaries = append(f.summaries, req)
		n, gate := len(f.summaries), f.summaryGate
		f.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		resp.Text = fmt.Sprintf("summary number %d of the conversation", n)
		resp.Usage = providers.Usage{InputTokens: providers.CountTokens(req.Messages[0].Text),
			OutputTokens: 8}
		return resp, nil
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	last := req.Messages[len(req.Messages)-1]
	if n, ok := toolsAsked(last); ok {
		for i := 0; i < n; i++ {
			c := providers.ToolCall{ID: fmt.Sprintf("call-%d-%d", len(f.requests), i),
				Name: "f", Arguments: `{"i":` + strconv.Itoa(i) + `}`}
			resp.ToolCalls = append(resp.ToolCalls, c)
			onDelta(providers.Delta{Kind: providers.DeltaToolCall, Index: i, ID: c.ID,
				Name: c.Name, Arguments: c.Arguments})
		}
		resp.StopReason = providers.StopToolUse
	} else {
		resp.Text = "answer " + last.Text
		onDelta(providers.Delta{Kind: providers.DeltaText, Text: resp.Text})
	}
	resp.Usage = providers.Usage{InputTokens: 10, OutputTokens: providers.CountTokens(resp.Text)}
	return resp, nil
}

// toolsAsked reports how many tool calls a user message asks for ("tools:N").
func toolsAsked(m providers.Message) (int, bool) {
	rest, ok := strings.CutPrefix(m.Text, "tools:")
	if m.Role != providers.RoleUser || !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.Fields(rest)[0])
	return n, err == nil && n > 0
}

// check lays req out with both adapters and validates the pairing of each.
func (f *scriptProvider) check(req *providers.Request) {
	var bad []string
	if body, err := anthropic.MarshalRequest(req); err != nil {
		bad = append(bad, "anthropic adapter: "+err.Error())
	} else if err := CheckAnthropicPairing(body); err != nil {
		bad = append(bad, "anthropic: "+err.Error())
	}
	if body, err := openai.MarshalRequest(req); err != nil {
		bad = append(bad, "openai adapter: "+err.Error())
	} else if err := CheckOpenAIPairing(body); err != nil {
		bad = append(bad, "openai: "+err.Error())
	}
	f.mu.Lock()
	f.violations = append(f.violations, bad...)
	f.mu.Unlock()
}

func (f *scriptProvider) answerRequests() []*providers.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*providers.Request(nil), f.requests...)
}

func (f *scriptProvider) summaryRequests() []*providers.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*providers.Request(nil), f.summaries...)
}

// savingsHarness runs a manager over a store with a scriptProvider, priced like
// Claude Sonnet for the session model and a hundredth of that for the summary
// model, so the cost model's decisions are those of real prices.
type savingsHarness struct {
	t      *testing.T
	store  storage.Store
	kv     storage.KV
	prov   *scriptProvider
	mgr    *Manager
	cfg    Config
	policy ContextPolicy
}

const testSummaryModel = "summary-model"

func newSavingsHarness(t *testing.T, policy ContextPolicy) *savingsHarness {
	t.Helper()
	h := &savingsHarness{t: t, store: storage.NewMemory(), kv: storage.NewMemoryKV(),
		prov: &scriptProvider{}, policy: policy}
	h.cfg = Config{Model: "claude-sonnet-4-5", MaxTokens: 500,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Cost: testPrices,
		Context: policy, Presets: h.kv,
		Guard: Guard{MaxTurns: -1, RepeatRun: -1}} // test turns look alike
	h.restart()
	return h
}

// testPrices prices like Claude Sonnet 4.5, and the summary model at a hundredth.
func testPrices(model string, u providers.Usage) (float64, error) {
	scale := 1e-6
	if model == testSummaryModel {
		scale = 1e-8
	}
	c := 3*float64(u.InputTokens) + 3.75*float64(u.CacheWrite5mTokens) +
		6*float64(u.CacheWrite1hTokens) + 0.3*float64(u.CacheReadTokens) +
		15*float64(u.OutputTokens)
	return c * scale, nil
}

// restart replaces the manager with a new one over the same store and KV.
func (h *savingsHarness) restart() {
	h.t.Helper()
	if h.mgr != nil {
		h.mgr.Close(context.Background())
	}
	mgr, err := NewManager(h.cfg, h.store, h.prov)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mgr = mgr
	h.t.Cleanup(func() { mgr.Close(context.Background()) })
}

func (h *savingsHarness) open(st Settings) (*Session, *recorder) {
	h.t.Helper()
	s, err := h.mgr.Open(context.Background(), "t1", st)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)
	return s, rec
}

// turn submits a user turn and waits for its answer.
func (h *savingsHarness) turn(s *Session, rec *recorder, id, text string) *Event {
	h.t.Helper()
	n := len(rec.answers())
	if _, err := s.Submit(context.Background(), rec, userTurn(id, text)); err != nil {
		h.t.Fatalf("turn %s: %v", id, err)
	}
	return rec.waitAnswers(h.t, n+1)[n]
}

// results answers every call of the last answer with text and waits for the
// next answer.
func (h *savingsHarness) results(s *Session, rec *recorder, ans *Event, text string) *Event {
	h.t.Helper()
	n := len(rec.answers())
	for i, c := range ans.ToolCalls {
		id := fmt.Sprintf("r-%d-%d", ans.Seq, i)
		if _, err := s.Submit(context.Background(), rec, toolResult(id, c.ID, text)); err != nil {
			h.t.Fatalf("result %s: %v", id, err)
		}
	}
	return rec.waitAnswers(h.t, n+1)[n]
}

// rollups returns the session's rollup events.
func rollups(s *Session) []Event {
	var out []Event
	for _, e := range s.History(0) {
		if e.Kind == KindRollup {
			out = append(out, e)
		}
	}
	return out
}

// noViolations fails the test if any request broke the pairing rules.
func (h *savingsHarness) noViolations() {
	h.t.Helper()
	h.prov.mu.Lock()
	defer h.prov.mu.Unlock()
	if len(h.prov.violations) > 0 {
		h.t.Fatalf("%d requests broke the pairing rules; first: %s", len(h.prov.violations),
			h.prov.violations[0])
	}
}

// words returns n distinct words tagged with tag, about n tokens.
func words(tag string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s%d ", tag, i)
	}
	return b.String()
}
