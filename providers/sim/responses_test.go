package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestResponsesRejectsInvalidRequests(t *testing.T) {
	call := map[string]any{"type": "function_call", "call_id": "c1", "name": "f",
		"arguments": "{}"}
	output := map[string]any{"type": "function_call_output", "call_id": "c1", "output": "ok"}
	user := map[string]any{"role": "user", "content": "Hi."}
	tests := []struct {
		name  string
		req   map[string]any
		param string
		text  string
	}{
		{"a model is required", map[string]any{"input": "Hi."}, "model", "Missing required"},
		{"input is required", map[string]any{"model": gpt}, "input", "Missing required"},
		{"an unknown item type is refused", map[string]any{"model": gpt, "input": []any{
			map[string]any{"type": "reasoning"}}}, "input[0].type", "'reasoning'"},
		{"an unknown role is refused", map[string]any{"model": gpt, "input": []any{
			map[string]any{"role": "tool", "content": "x"}}}, "input[0].role", "'tool'"},
		{"the user does not send output_text", map[string]any{"model": gpt, "input": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{
				"type": "output_text", "text": "x"}}}}}, "input[0].content[0].type",
			"'input_text'"},
		{"the assistant does not send input_text", map[string]any{"model": gpt,
			"input": []any{user, map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "input_text", "text": "x"}}}}},
			"input[1].content[0].type", "'output_text' and 'refusal'"},
		{"an output needs its call", map[string]any{"model": gpt, "input": []any{user,
			output}}, "input", "No tool call found for function call output with call_id c1."},
		{"a call needs its output", map[string]any{"model": gpt, "input": []any{user, call}},
			"input", "No tool output found for function call c1."},
		{"only function tools", map[string]any{"model": gpt, "input": "Hi.",
			"tools": []any{map[string]any{"type": "web_search"}}}, "tools[0].type",
			"'function'"},
		{"a bad breakpoint ttl is refused", map[string]any{"model": "gpt-5.6", "input": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{
				"type": "input_text", "text": "x", "prompt_cache_breakpoint": map[string]any{
					"mode": "explicit", "ttl": "5m"}}}}}},
			"input[0].content[0].prompt_cache_breakpoint.ttl", "'30m' and '12h'"},
	}
	srv := startServer(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, responsesPath, openaiHeaders("k"), tt.req)
			var e struct {
				Error struct {
					Message, Type string
					Param         *string
				}
			}
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 400 ||
				e.Error.Type != "invalid_request_error" || e.Error.Param == nil ||
				*e.Error.Param != tt.param || !strings.Contains(e.Error.Message, tt.text) {
				t.Errorf("%d %s, want 400 about %s saying %q", resp.StatusCode, body, tt.param,
					tt.text)
			}
		})
	}
	t.Run("a request without a key is unauthorized", func(t *testing.T) {
		resp, body := post(t, srv, responsesPath, nil, map[string]any{"model": gpt,
			"input": "Hi."})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body),
			"invalid_api_key") {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestResponsesStreamsToolCallsInOrder(t *testing.T) {
	srv := startServer(t, Options{Replies: repliesOf(t, recordedCalls)})
	resp, body := post(t, srv, responsesPath, openaiHeaders("k"), map[string]any{
		"model": gpt, "stream": true, "input": "Check both orders."})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var types []string
	for i, ev := range parseSSE(t, body) {
		var e struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil || e.Type != ev.name ||
			e.Seq != i {
			t.Fatalf("event %d %s: %s", i, ev.name, ev.data)
		}
		if e.Type != "response.function_call_arguments.delta" {
			types = append(types, e.Type)
		}
	}
	want := "response.created response.in_progress " +
		"response.output_item.added response.function_call_arguments.done " +
		"response.output_item.done " +
		"response.output_item.added response.function_call_arguments.done " +
		"response.output_item.done response.completed"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
}

// recordedCalls is a recorded conversation whose answer is two tool calls.
const recordedCalls = `{"id":"o","messages":[{"role":"user","content":"Check both orders."},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",` +
	`"function":{"name":"get_order","arguments":"{\"order_id\":\"A-1001\"}"}},` +
	`{"id":"call_2","type":"function","function":{"name":"get_order",` +
	`"arguments":"{\"order_id\":\"A-1002\"}"}}]}]}`

// repliesOf loads recorded conversations given as JSONL text.
func repliesOf(t *testing.T, jsonl string) *Replies {
	t.Helper()
	r, err := LoadReplies(writeFile(t, "replies.jsonl", jsonl+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResponsesStoreTheConversation(t *testing.T) {
	srv := startServer(t, Options{MaxStoredResponses: 1})
	send := func(req map[string]any) (int, map[string]any) {
		resp, body := post(t, srv, responsesPath, openaiHeaders("k"), req)
		var r map[string]any
		_ = json.Unmarshal(body, &r)
		return resp.StatusCode, r
	}
	status, first := send(map[string]any{"model": gpt, "input": longText(500),
		"instructions": longText(300)})
	if status != 200 || first["store"] != true {
		t.Fatalf("first: %d %v", status, first)
	}
	status, second := send(map[string]any{"model": gpt, "input": "More.",
		"previous_response_id": first["id"]})
	if status != 200 {
		t.Fatalf("second: %d %v", status, second)
	}
	tokens := func(r map[string]any) float64 {
		return r["usage"].(map[string]any)["input_tokens"].(float64)
	}
	if t1, t2 := tokens(first), tokens(second); t2 < 500 || t2 > t1-200 {
		t.Errorf("the second request counts %v input tokens after %v: want the previous "+
			"conversation (500 and more) without the instructions (300)", t2, t1)
	}
	if status, _ := send(map[string]any{"model": gpt, "input": "Again.",
		"previous_response_id": first["id"]}); status != 400 {
		t.Errorf("a response beyond the store's bound: status %d, want 400", status)
	}
}
