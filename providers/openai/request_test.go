package openai

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
		Model:     "gpt-4o-mini",
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
				{ID: "call_01", Name: "get_weather", Arguments: `{"city": "Paris"}`},
				{ID: "call_02", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`},
			}},
			{Role: providers.RoleTool, ToolCallID: "call_01", Text: "18°C, clear"},
			{Role: providers.RoleTool, ToolCallID: "call_02", Text: "unknown tz", IsError: true},
			{Role: providers.RoleUser, Text: "Thanks. And Rome?"},
		},
		Cache: providers.CachePlan{System: true, Messages: []int{1, 4}, TTL: "1h",
			Key: "session-42"},
	}
}

const toolRoundTripBody = `{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are terse. Use <b> for emphasis."},` +
	`{"role":"user","content":"Weather and time in Paris?"},` +
	`{"role":"assistant","content":"Checking.","tool_calls":[` +
	`{"id":"call_01","type":"function","function":{"name":"get_weather",` +
	`"arguments":"{\"city\": \"Paris\"}"}},` +
	`{"id":"call_02","type":"function","function":{"name":"get_time",` +
	`"arguments":"{\"tz\":\"Europe/Paris\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_01","content":"18°C, clear"},` +
	`{"role":"tool","tool_call_id":"call_02","content":"unknown tz"},` +
	`{"role":"user","content":"Thanks. And Rome?"}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather",` +
	`"description":"Current weather for a city.","parameters":` +
	`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},` +
	`{"type":"function","function":{"name":"get_time",` +
	`"parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}],` +
	`"max_completion_tokens":1024,"stream":true,"stream_options":{"include_usage":true},` +
	`"prompt_cache_key":"session-42"}`

func TestMarshalRequestWritesTheExactBody(t *testing.T) {
	tests := []struct {
		name string
		req  *providers.Request
		want string
	}{
		{
			name: "tools, system, two parallel calls, their results and a cache key",
			req:  toolRoundTrip(),
			want: toolRoundTripBody,
		},
		{
			name: "a single user turn has no system, no tools and no cache key",
			req: &providers.Request{Model: "m", MaxTokens: 16, Messages: []providers.Message{
				{Role: providers.RoleUser, Text: "hi"},
			}},
			want: `{"model":"m","messages":[{"role":"user","content":"hi"}],` +
				`"max_completion_tokens":16,"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "tool calls without text have null content and empty arguments become {}",
			req: &providers.Request{Model: "m", Messages: []providers.Message{
				{Role: providers.RoleUser, Text: ""},
				{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
					{ID: "a", Name: "f"},
				}},
				{Role: providers.RoleTool, ToolCallID: "a"},
			}},
			want: `{"model":"m","messages":[{"role":"user","content":""},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function",` +
				`"function":{"name":"f","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"a","content":""}],` +
				`"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "a tool without description or schema",
			req: &providers.Request{Model: "m", MaxTokens: 1, Tools: []providers.Tool{{Name: "t"}},
				Messages: []providers.Message{{Role: providers.RoleUser, Text: "x"}}},
			want: `{"model":"m","messages":[{"role":"user","content":"x"}],` +
				`"tools":[{"type":"function","function":{"name":"t"}}],` +
				`"max_completion_tokens":1,"stream":true,"stream_options":{"include_usage":true}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MarshalRequest(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMarshalRequestRefusesWhatTheAPIWouldReject(t *testing.T) {
	user := []providers.Message{{Role: providers.RoleUser, Text: "hi"}}
	tests := []struct {
		name string
		req  *providers.Request
	}{
		{"a nil request", nil},
		{"no model", &providers.Request{Messages: user}},
		{"negative max tokens", &providers.Request{Model: "m", MaxTokens: -1, Messages: user}},
		{"no messages", &providers.Request{Model: "m"}},
		{"an empty assistant message", &providers.Request{Model: "m",
			Messages: append(user, providers.Message{Role: providers.RoleAssistant})}},
		{"an unknown role", &providers.Request{Model: "m",
			Messages: []providers.Message{{Role: "system", Text: "x"}}}},
		{"tool parameters that are not JSON", &providers.Request{Model: "m", Messages: user,
			Tools: []providers.Tool{{Name: "t", InputSchema: json.RawMessage(`{"a":`)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := MarshalRequest(tc.req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err %v, want ErrInvalidRequest (body %s)", err, body)
			}
		})
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

// wireParts is a body cut into its parts, bytes kept as sent.
type wireParts struct {
	Messages []json.RawMessage `json:"messages"`
	Tools    json.RawMessage   `json:"tools"`
	Rest     map[string]json.RawMessage
}

func splitBody(t *testing.T, body []byte) wireParts {
	t.Helper()
	var p wireParts
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if err := json.Unmarshal(body, &p.Rest); err != nil {
		t.Fatal(err)
	}
	delete(p.Rest, "messages")
	return p
}

// checkPrefixKept fails unless next, the body of a request with more messages,
// keeps prev's system message, tools, settings and every message byte for byte.
func checkPrefixKept(t *testing.T, prev, next []byte) {
	t.Helper()
	a, b := splitBody(t, prev), splitBody(t, next)
	if !bytes.Equal(a.Tools, b.Tools) {
		t.Fatalf("tools changed:\n%s\n%s", a.Tools, b.Tools)
	}
	for k, v := range a.Rest {
		if !bytes.Equal(v, b.Rest[k]) {
			t.Fatalf("%s changed: %s, then %s", k, v, b.Rest[k])
		}
	}
	if len(b.Messages) <= len(a.Messages) {
		t.Fatalf("%d messages became %d", len(a.Messages), len(b.Messages))
	}
	for i := range a.Messages {
		if !bytes.Equal(a.Messages[i], b.Messages[i]) {
			t.Fatalf("message %d changed:\n%s\n%s", i, a.Messages[i], b.Messages[i])
		}
	}
	if head := prev[:messagesEnd(t, prev)-1]; !bytes.HasPrefix(next, head) {
		t.Fatalf("the bytes up to the end of the old messages changed")
	}
}

// messagesEnd is the offset just after the messages array of body.
func messagesEnd(t *testing.T, body []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
		if key == "messages" {
			return int(dec.InputOffset())
		}
	}
	t.Fatal("no messages in the body")
	return 0
}

// growingRequests checks every turn of conv against the next turn.
func growingRequests(t *testing.T, conv providers.Request) {
	t.Helper()
	var prev []byte
	for n := 1; n <= len(conv.Messages); n++ {
		req := conv
		req.Model, req.MaxTokens = "gpt-4o-mini", 4096
		req.Messages = conv.Messages[:n]
		req.Cache = providers.CachePlan{Key: "session-1"}
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
