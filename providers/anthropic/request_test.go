package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// toolRoundTrip is a request with tools, a system prompt, a tool round trip with
// two parallel calls (one failing) and a cache plan.
func toolRoundTrip() *providers.Request {
	return &providers.Request{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Tools: []providers.Tool{
			{
				Name:        "get_weather",
				Description: "Current weather for a city.",
				InputSchema: json.RawMessage(`{"type": "object",
					"properties": {"city": {"type": "string"}}, "required": ["city"]}`),
			},
			{
				Name: "get_time",
				InputSchema: json.RawMessage(
					`{"type":"object","properties":{"tz":{"type":"string"}}}`),
			},
		},
		System: "You are terse. Use <b> for emphasis.",
		Messages: []providers.Message{
			{Role: providers.RoleUser, Text: "Weather and time in Paris?"},
			{Role: providers.RoleAssistant, Text: "Checking.", ToolCalls: []providers.ToolCall{
				{ID: "toolu_01", Name: "get_weather", Arguments: `{"city": "Paris"}`},
				{ID: "toolu_02", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`},
			}},
			{Role: providers.RoleTool, ToolCallID: "toolu_01", Text: "18°C, clear"},
			{Role: providers.RoleTool, ToolCallID: "toolu_02", Text: "unknown tz", IsError: true},
			{Role: providers.RoleUser, Text: "Thanks. And Rome?"},
		},
		Cache: providers.CachePlan{System: true, Messages: []int{1, 3, 4}, TTL: "1h"},
	}
}

const toolRoundTripBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"tools":[` +
	`{"name":"get_weather","description":"Current weather for a city.","input_schema":` +
	`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},` +
	`{"name":"get_time","input_schema":{"type":"object","properties":{"tz":{"type":"string"}}}}],` +
	`"system":[{"type":"text","text":"You are terse. Use <b> for emphasis.",` +
	`"cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
	`"messages":[` +
	`{"role":"user","content":[{"type":"text","text":"Weather and time in Paris?"}]},` +
	`{"role":"assistant","content":[{"type":"text","text":"Checking."},` +
	`{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}},` +
	`{"type":"tool_use","id":"toolu_02","name":"get_time","input":{"tz":"Europe/Paris"},` +
	`"cache_control":{"type":"ephemeral","ttl":"1h"}}]},` +
	`{"role":"user","content":[` +
	`{"type":"tool_result","tool_use_id":"toolu_01","content":"18°C, clear"},` +
	`{"type":"tool_result","tool_use_id":"toolu_02","content":"unknown tz","is_error":true},` +
	`{"type":"text","text":"Thanks. And Rome?",` +
	`"cache_control":{"type":"ephemeral","ttl":"1h"}}]}],` +
	`"stream":true}`

// bodyCase is a request and the exact body it must serialize to.
type bodyCase struct {
	name string
	req  *providers.Request
	want string
}

var bodyCases = []bodyCase{
	{
		name: "tools, system, two parallel calls, their results and a cache plan",
		req:  toolRoundTrip(),
		want: toolRoundTripBody,
	},
	{
		name: "a single user turn has no tools and no system",
		req: &providers.Request{Model: "m", MaxTokens: 16, Messages: []providers.Message{
			{Role: providers.RoleUser, Text: "hi"},
		}},
		want: `{"model":"m","max_tokens":16,"messages":[` +
			`{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}`,
	},
	{
		name: "tool calls without text and with unusable arguments send an empty object",
		req: &providers.Request{Model: "m", MaxTokens: 16, Messages: []providers.Message{
			{Role: providers.RoleUser, Text: "go"},
			{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
				{ID: "a", Name: "f", Arguments: ""},
				{ID: "b", Name: "f", Arguments: `{"x":`},
				{ID: "c", Name: "f", Arguments: `[1]`},
			}},
			{Role: providers.RoleTool, ToolCallID: "a"},
		}},
		want: `{"model":"m","max_tokens":16,"messages":[` +
			`{"role":"user","content":[{"type":"text","text":"go"}]},` +
			`{"role":"assistant","content":[` +
			`{"type":"tool_use","id":"a","name":"f","input":{}},` +
			`{"type":"tool_use","id":"b","name":"f","input":{}},` +
			`{"type":"tool_use","id":"c","name":"f","input":{}}]},` +
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}],` +
			`"stream":true}`,
	},
	{
		name: "a system breakpoint without a system prompt goes on the last tool",
		req: &providers.Request{
			Model: "m", MaxTokens: 16,
			Tools: []providers.Tool{{Name: "a"}, {Name: "b", Description: "B"}},
			Messages: []providers.Message{
				{Role: providers.RoleUser, Text: "hi"},
			},
			Cache: providers.CachePlan{System: true, Messages: []int{0}, TTL: "5m"},
		},
		want: `{"model":"m","max_tokens":16,"tools":[` +
			`{"name":"a","input_schema":{"type":"object"}},` +
			`{"name":"b","description":"B","input_schema":{"type":"object"},` +
			`"cache_control":{"type":"ephemeral"}}],"messages":[` +
			`{"role":"user","content":[{"type":"text","text":"hi",` +
			`"cache_control":{"type":"ephemeral"}}]}],"stream":true}`,
	},
	{
		name: "1-hour breakpoints before 5-minute ones, with automatic caching last",
		req: &providers.Request{
			Model: "m", MaxTokens: 16, System: "S",
			Messages: []providers.Message{
				{Role: providers.RoleUser, Text: "a"},
				{Role: providers.RoleAssistant, Text: "b"},
				{Role: providers.RoleUser, Text: "c"},
			},
			Cache: providers.CachePlan{System: true, SystemTTL: "1h", Messages: []int{1, 0},
				MessageTTL: map[int]string{0: "1h"}, Auto: true},
		},
		want: `{"model":"m","max_tokens":16,"system":[{"type":"text","text":"S",` +
			`"cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[` +
			`{"role":"user","content":[{"type":"text","text":"a",` +
			`"cache_control":{"type":"ephemeral","ttl":"1h"}}]},` +
			`{"role":"assistant","content":[{"type":"text","text":"b",` +
			`"cache_control":{"type":"ephemeral"}}]},` +
			`{"role":"user","content":[{"type":"text","text":"c"}]}],` +
			`"cache_control":{"type":"ephemeral"},"stream":true}`,
	},
	{
		name: "automatic caching alone sends only the request-level marker",
		req: &providers.Request{
			Model: "m", MaxTokens: 16,
			Messages: []providers.Message{{Role: providers.RoleUser, Text: "hi"}},
			Cache:    providers.CachePlan{Auto: true, TTL: "1h"},
		},
		want: `{"model":"m","max_tokens":16,"messages":[` +
			`{"role":"user","content":[{"type":"text","text":"hi"}]}],` +
			`"cache_control":{"type":"ephemeral","ttl":"1h"},"stream":true}`,
	},
}

func TestMarshalRequestWritesTheExactBody(t *testing.T) {
	for _, tc := range bodyCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MarshalRequest(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("body is not JSON: %s", got)
			}
		})
	}
}

func TestMarshalRequestRefusesWhatTheAPIWouldReject(t *testing.T) {
	user := providers.Message{Role: providers.RoleUser, Text: "hi"}
	five := []providers.Message{user, user, user, user, user}
	tests := []struct {
		name string
		req  *providers.Request
		want error
	}{
		{"a nil request", nil, ErrInvalidRequest},
		{"no model", &providers.Request{MaxTokens: 1, Messages: five}, ErrInvalidRequest},
		{"no max tokens", &providers.Request{Model: "m", Messages: five}, ErrInvalidRequest},
		{"no messages", &providers.Request{Model: "m", MaxTokens: 1}, ErrInvalidRequest},
		{"an empty user message", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: []providers.Message{{Role: providers.RoleUser}}}, ErrInvalidRequest},
		{"an empty assistant message", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: []providers.Message{user, {Role: providers.RoleAssistant}}},
			ErrInvalidRequest},
		{"an unknown role", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: []providers.Message{{Role: "system", Text: "x"}}}, ErrInvalidRequest},
		{"a tool schema that is not JSON", &providers.Request{Model: "m", MaxTokens: 1,
			Tools:    []providers.Tool{{Name: "t", InputSchema: json.RawMessage(`{`)}},
			Messages: five}, ErrInvalidRequest},
		{"a cache plan naming a missing message", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: five, Cache: providers.CachePlan{Messages: []int{5}}}, ErrInvalidRequest},
		{"a cache plan with a negative index", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: five, Cache: providers.CachePlan{Messages: []int{-1}}}, ErrInvalidRequest},
		{"an unknown ttl", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: five, Cache: providers.CachePlan{TTL: "1d"}}, ErrInvalidRequest},
		{"five breakpoints", &providers.Request{Model: "m", MaxTokens: 1, System: "s",
			Messages: five, Cache: providers.CachePlan{System: true, Messages: []int{0, 1, 2, 3}}},
			ErrTooManyBreakpoints},
		{"four breakpoints and automatic caching", &providers.Request{Model: "m", MaxTokens: 1,
			System: "s", Messages: five, Cache: providers.CachePlan{System: true,
				Messages: []int{0, 1, 2}, Auto: true}}, ErrTooManyBreakpoints},
		{"an unknown system ttl", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: five, Cache: providers.CachePlan{SystemTTL: "24h"}}, ErrInvalidRequest},
		{"an unknown message ttl", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: five, Cache: providers.CachePlan{Messages: []int{2},
				MessageTTL: map[int]string{2: "10m"}}}, ErrInvalidRequest},
		{"a 1h message breakpoint after a 5m system one", &providers.Request{Model: "m",
			MaxTokens: 1, System: "s", Messages: five, Cache: providers.CachePlan{
				System: true, Messages: []int{3}, MessageTTL: map[int]string{3: "1h"}}},
			ErrInvalidRequest},
		{"a 1h message breakpoint after a 5m message one listed later", &providers.Request{
			Model: "m", MaxTokens: 1, Messages: five, Cache: providers.CachePlan{
				Messages: []int{4, 1}, TTL: "5m", MessageTTL: map[int]string{4: "1h"}}},
			ErrInvalidRequest},
		{"1h automatic caching after a 5m breakpoint", &providers.Request{Model: "m",
			MaxTokens: 1, Messages: five, Cache: providers.CachePlan{Messages: []int{1},
				MessageTTL: map[int]string{1: "5m"}, Auto: true, TTL: "1h"}}, ErrInvalidRequest},
		{"two ttls for one folded breakpoint", &providers.Request{Model: "m", MaxTokens: 1,
			Messages: toolRoundTrip().Messages, Cache: providers.CachePlan{
				Messages: []int{2, 3}, MessageTTL: map[int]string{2: "1h", 3: "5m"}}},
			ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := MarshalRequest(tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v (body %s)", err, tc.want, body)
			}
		})
	}
}

func TestMarshalRequestCountsAMarkerSharedByFoldedMessagesOnce(t *testing.T) {
	req := toolRoundTrip()
	// Messages 2, 3 and 4 all end up in one wire message: one marker, four in all.
	req.Cache.Messages = []int{0, 1, 2, 3, 4}
	if _, err := MarshalRequest(req); err != nil {
		t.Fatalf("four markers refused: %v", err)
	}
}

func TestMarshalRequestGivesTheSameBytesEveryTime(t *testing.T) {
	first, err := MarshalRequest(toolRoundTrip())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := MarshalRequest(toolRoundTrip())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("bodies differ:\n%s\n%s", first, again)
		}
	}
}

// wireParts is a body cut into its prefix parts, bytes kept as sent.
type wireParts struct {
	Tools    json.RawMessage   `json:"tools"`
	System   json.RawMessage   `json:"system"`
	Messages []json.RawMessage `json:"messages"`
}

func splitBody(t *testing.T, body []byte) wireParts {
	t.Helper()
	var p wireParts
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	return p
}

var markers = [][]byte{
	[]byte(`,"cache_control":{"type":"ephemeral"}`),
	[]byte(`,"cache_control":{"type":"ephemeral","ttl":"1h"}`),
}

func withoutMarkers(b []byte) []byte {
	for _, m := range markers {
		b = bytes.ReplaceAll(b, m, nil)
	}
	return b
}

// checkPrefixKept fails unless next, the body of a request with more messages,
// keeps prev's tools and system bytes exactly and its messages except for moved
// cache_control markers; prev's last message may only have grown at its end.
func checkPrefixKept(t *testing.T, prev, next []byte) {
	t.Helper()
	a, b := splitBody(t, prev), splitBody(t, next)
	if !bytes.Equal(a.Tools, b.Tools) || !bytes.Equal(a.System, b.System) {
		t.Fatalf("tools or system changed:\n%s\n%s\n%s\n%s", a.Tools, b.Tools, a.System, b.System)
	}
	if len(b.Messages) < len(a.Messages) {
		t.Fatalf("%d wire messages became %d", len(a.Messages), len(b.Messages))
	}
	last := len(a.Messages) - 1
	for i := range last {
		if !bytes.Equal(withoutMarkers(a.Messages[i]), withoutMarkers(b.Messages[i])) {
			t.Fatalf("message %d changed:\n%s\n%s", i, a.Messages[i], b.Messages[i])
		}
	}
	oldLast := withoutMarkers(a.Messages[last])
	oldLast = bytes.TrimSuffix(oldLast, []byte("]}"))
	if !bytes.HasPrefix(withoutMarkers(b.Messages[last]), oldLast) {
		t.Fatalf("last message changed:\n%s\n%s", a.Messages[last], b.Messages[last])
	}
	if !bytes.HasPrefix(withoutMarkers(next), withoutMarkers(prev)[:bytes.Index(
		withoutMarkers(prev), []byte(`"messages":`))]) {
		t.Fatalf("the bytes before the messages changed")
	}
}

// growingRequests checks the prefix of every turn of conv against the next turn,
// with the breakpoints the layout uses: system and the newest message.
func growingRequests(t *testing.T, conv providers.Request) {
	t.Helper()
	var prev []byte
	for n := 1; n <= len(conv.Messages); n++ {
		req := conv
		req.Model, req.MaxTokens = "claude-sonnet-4-5", 4096
		req.Messages = conv.Messages[:n]
		req.Cache = providers.CachePlan{System: true, Messages: []int{n - 1}}
		body, err := MarshalRequest(&req)
		if err != nil {
			t.Fatalf("turn %d: %v", n, err)
		}
		if prev != nil {
			checkPrefixKept(t, prev, body)
		}
		prev = body
	}
}

func TestMarshalRequestKeepsThePrefixWhenAMessageIsAdded(t *testing.T) {
	t.Run("a tool round trip", func(t *testing.T) {
		growingRequests(t, *toolRoundTrip())
	})
	t.Run("real agent conversations with a long system prompt", func(t *testing.T) {
		system, err := os.ReadFile(filepath.Join(sharedData(t), "system-prompts",
			"assistant-long.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, conv := range loadConversations(t, "glaive-tools-en.jsonl", 5) {
			conv.System = string(system)
			growingRequests(t, conv)
		}
		for _, conv := range loadConversations(t, "openhands-agent.jsonl", 2) {
			growingRequests(t, conv)
		}
	})
}
