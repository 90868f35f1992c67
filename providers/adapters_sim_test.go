package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
)

// faultTransport sends the x-sim-fault header of the next requests: each request
// takes the first fault of the queue, and requests after the queue is empty
// carry none.
type faultTransport struct {
	mu     sync.Mutex
	faults []string
}

func (f *faultTransport) queue(faults ...string) {
	f.mu.Lock()
	f.faults = append(f.faults, faults...)
	f.mu.Unlock()
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if len(f.faults) > 0 {
		r = r.Clone(r.Context())
		r.Header.Set("x-sim-fault", f.faults[0])
		f.faults = f.faults[1:]
	}
	f.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// simAdapter is one adapter talking to the simulator.
type simAdapter struct {
	name     string
	model    string
	provider providers.Provider
	faults   *faultTransport
	// direct posts a non-streamed request with the same conversation and returns
	// the usage of its answer.
	direct func(t *testing.T, req *providers.Request) providers.Usage
}

// simAdapters starts a simulator and returns the three adapters on it, each with
// its own API key (so its own cache).
func simAdapters(t *testing.T) []simAdapter {
	t.Helper()
	srv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(srv.Close)
	client := func(f *faultTransport) *http.Client { return &http.Client{Transport: f} }
	var af, of, rf faultTransport
	return []simAdapter{
		{name: "anthropic", model: "claude-sonnet-4-5", faults: &af,
			provider: anthropic.New(anthropic.Config{BaseURL: srv.URL, APIKey: "key-a",
				HTTPClient: client(&af)}),
			direct: func(t *testing.T, req *providers.Request) providers.Usage {
				body, err := anthropic.MarshalRequest(req)
				if err != nil {
					t.Fatal(err)
				}
				return anthropicUsage(t, postUnstreamed(t, srv.URL+"/v1/messages", body,
					"x-api-key", "key-a-direct", "anthropic-version", anthropic.APIVersion))
			}},
		{name: "openai chat completions", model: "gpt-4.1", faults: &of,
			provider: openai.New(openai.Config{BaseURL: srv.URL + "/v1", APIKey: "key-o",
				HTTPClient: client(&of)}),
			direct: func(t *testing.T, req *providers.Request) providers.Usage {
				body, err := openai.MarshalRequest(req)
				if err != nil {
					t.Fatal(err)
				}
				return chatUsage(t, postUnstreamed(t, srv.URL+"/v1/chat/completions", body,
					"authorization", "Bearer key-o-direct"))
			}},
		{name: "openai responses", model: "gpt-4.1", faults: &rf,
			provider: openai.NewResponses(openai.Config{BaseURL: srv.URL + "/v1",
				APIKey: "key-r", HTTPClient: client(&rf)}),
			direct: func(t *testing.T, req *providers.Request) providers.Usage {
				body, err := openai.MarshalResponsesRequest(req)
				if err != nil {
					t.Fatal(err)
				}
				return responsesUsage(t, postUnstreamed(t, srv.URL+"/v1/responses", body,
					"authorization", "Bearer key-r-direct"))
			}},
	}
}

// postUnstreamed sends body with "stream":true turned off and returns the answer.
func postUnstreamed(t *testing.T, url string, body []byte, header ...string) []byte {
	t.Helper()
	body = bytes.Replace(body, []byte(`"stream":true`), []byte(`"stream":false`), 1)
	body = bytes.Replace(body, []byte(`,"stream_options":{"include_usage":true}`), nil, 1)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, out)
	}
	return out
}

func anthropicUsage(t *testing.T, raw []byte) providers.Usage {
	t.Helper()
	var m struct {
		Usage struct {
			InputTokens   int `json:"input_tokens"`
			CacheRead     int `json:"cache_read_input_tokens"`
			CacheCreation struct {
				FiveMinutes int `json:"ephemeral_5m_input_tokens"`
				OneHour     int `json:"ephemeral_1h_input_tokens"`
			} `json:"cache_creation"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	mustDecode(t, raw, &m)
	u := m.Usage
	return providers.Usage{InputTokens: u.InputTokens, CacheReadTokens: u.CacheRead,
		CacheWrite5mTokens: u.CacheCreation.FiveMinutes,
		CacheWrite1hTokens: u.CacheCreation.OneHour, OutputTokens: u.OutputTokens}
}

func chatUsage(t *testing.T, raw []byte) providers.Usage {
	t.Helper()
	var c struct {
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			Details          struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	mustDecode(t, raw, &c)
	u := c.Usage
	return providers.Usage{InputTokens: u.PromptTokens - u.Details.CachedTokens,
		CacheReadTokens: u.Details.CachedTokens, OutputTokens: u.CompletionTokens}
}

func responsesUsage(t *testing.T, raw []byte) providers.Usage {
	t.Helper()
	var r struct {
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
			Details      struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"input_tokens_details"`
		} `json:"usage"`
	}
	mustDecode(t, raw, &r)
	u := r.Usage
	return providers.Usage{InputTokens: u.InputTokens - u.Details.CachedTokens,
		CacheReadTokens: u.Details.CachedTokens, OutputTokens: u.OutputTokens}
}

func mustDecode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// longSystem is a system prompt long enough for every simulated model to cache.
func longSystem(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "data", "system-prompts")
	if paths, _ := filepath.Glob(filepath.Join(dir, "*")); len(paths) > 0 {
		if b, err := os.ReadFile(paths[0]); err == nil && len(b) > 8000 {
			return string(b)
		}
	}
	return strings.Repeat("The session server keeps every conversation durable. ", 800)
}

// conversation is a request with a long system prompt, a tool round trip and a
// new user turn, with breakpoints on the system prompt and the last message.
func conversation(t *testing.T, model string) *providers.Request {
	return &providers.Request{
		Model: model, MaxTokens: 200, System: longSystem(t),
		Tools: []providers.Tool{{Name: "get_weather", Description: "Weather for a city.",
			InputSchema: json.RawMessage(`{"type":"object","properties":` +
				`{"city":{"type":"string"}},"required":["city"]}`)}},
		Messages: []providers.Message{
			{Role: providers.RoleUser, Text: "Weather in Paris?"},
			{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
				{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
			{Role: providers.RoleTool, ToolCallID: "call_1", Text: "18°C, clear"},
			{Role: providers.RoleUser, Text: "And should I take a coat?"},
		},
		Cache: providers.CachePlan{System: true, Messages: []int{3}, Key: "stated-test"},
	}
}

func TestAdaptersStreamTheSimulatorsAnswer(t *testing.T) {
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			var text deltaText
			resp, err := a.provider.Complete(context.Background(), conversation(t, a.model),
				text.add)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != providers.StatusComplete || resp.Text == "" ||
				resp.Text != text.String() || resp.StopReason != providers.StopEnd ||
				!resp.UsageReported || !strings.HasPrefix(resp.Model, a.model) {
				t.Fatalf("answer %+v, deltas %q", resp, text.String())
			}
			if resp.Usage.PromptTokens() < 1024 || resp.Usage.OutputTokens < 1 {
				t.Fatalf("usage %+v", resp.Usage)
			}
		})
	}
}

// TestCacheCategoriesAddUpToTheSamePrompt holds the usage mapping of each API:
// Anthropic reports input, cache read and cache write disjoint, OpenAI reports
// cached tokens as a part of the prompt tokens; either way the same prompt sent
// twice counts the same prompt tokens, the second time partly as cache reads.
func TestCacheCategoriesAddUpToTheSamePrompt(t *testing.T) {
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			req := conversation(t, a.model)
			first, err := a.provider.Complete(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			second, err := a.provider.Complete(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, s := first.Usage, second.Usage
			if f.PromptTokens() != s.PromptTokens() {
				t.Fatalf("prompt tokens %d then %d for the same prompt: %+v, %+v",
					f.PromptTokens(), s.PromptTokens(), f, s)
			}
			if f.CacheReadTokens != 0 || s.CacheReadTokens == 0 {
				t.Fatalf("cache reads %d then %d, want 0 then some", f.CacheReadTokens,
					s.CacheReadTokens)
			}
			if a.name == "anthropic" && (f.CacheWriteTokens() == 0 ||
				s.CacheReadTokens != f.CacheWriteTokens() || s.InputTokens != f.InputTokens) {
				t.Fatalf("anthropic: first %+v, second %+v: want the write read back and "+
					"the same uncached input", f, s)
			}
			if a.name != "anthropic" && s.InputTokens != f.InputTokens-s.CacheReadTokens {
				t.Fatalf("openai: first %+v, second %+v: cached tokens must come out of "+
					"the input", f, s)
			}
		})
	}
}

func TestCostIsTheSameStreamedAndNot(t *testing.T) {
	prices := finops.DefaultPrices()
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			req := conversation(t, a.model)
			streamed, err := a.provider.Complete(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			direct := a.direct(t, req) // another API key: the same cold cache
			if streamed.Usage != direct {
				t.Fatalf("usage streamed %+v, not streamed %+v", streamed.Usage, direct)
			}
			cs, err := prices.Cost(a.model, tokens(streamed.Usage))
			if err != nil {
				t.Fatal(err)
			}
			cd, err := prices.Cost(a.model, tokens(direct))
			if err != nil {
				t.Fatal(err)
			}
			if cs != cd || cs == 0 {
				t.Fatalf("cost streamed %v, not streamed %v", cs, cd)
			}
		})
	}
}

func tokens(u providers.Usage) finops.Tokens {
	return finops.Tokens{Input: u.InputTokens, CacheWrite5m: u.CacheWrite5mTokens,
		CacheWrite1h: u.CacheWrite1hTokens, CacheRead: u.CacheReadTokens,
		Output: u.OutputTokens}
}

func TestAnEmptyAnswerIsFollowedByAnotherTurn(t *testing.T) {
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			a.faults.queue("empty")
			req := hello(a.model)
			empty, err := a.provider.Complete(context.Background(), req, nil)
			if err != nil || empty.Text != "" || len(empty.ToolCalls) != 0 ||
				empty.Status != providers.StatusComplete {
				t.Fatalf("got %+v, %v; want a complete empty answer", empty, err)
			}
			// The empty answer is left out of the next request, as the session's
			// layout does, and the user's next turn joins the first.
			req.Messages[0].Text += "\n\nAre you there?"
			next, err := a.provider.Complete(context.Background(), req, nil)
			if err != nil || next.Text == "" || next.Status != providers.StatusComplete {
				t.Fatalf("got %+v, %v; want an answer", next, err)
			}
		})
	}
}

func TestAnErrorEventMidStreamKeepsWhatWasSaid(t *testing.T) {
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			a.faults.queue("error-event=5")
			var text deltaText
			resp, err := a.provider.Complete(context.Background(), hello(a.model), text.add)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Status != 0 {
				t.Fatalf("err %v, want an in-stream *providers.Error", err)
			}
			if resp == nil || resp.Status != providers.StatusIncomplete ||
				resp.Text == "" || resp.Text != text.String() {
				t.Fatalf("partial %+v, deltas %q", resp, text.String())
			}
		})
	}
}

func TestRetrierWaitsWhatTheSimulatorAsksThenGetsTheAnswer(t *testing.T) {
	for _, a := range simAdapters(t) {
		t.Run(a.name, func(t *testing.T) {
			a.faults.queue("status=429;retry-after=2s")
			var clock fakeClock
			var logged bytes.Buffer
			r := providers.NewRetrier(a.provider, policy(&clock, &logged))
			resp, err := r.Complete(context.Background(), hello(a.model), nil)
			if err != nil || resp.Text == "" {
				t.Fatalf("got %+v, %v", resp, err)
			}
			if got := clock.slept(); len(got) != 1 || got[0] != 2e9 {
				t.Fatalf("slept %v, want [2s]", got)
			}
		})
	}
}
