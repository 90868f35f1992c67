package sim

import (
	"testing"
)

// FuzzParseMessagesRequest holds that no request body makes the Messages parser
// or the prompt layout panic, and that an accepted request lays out a prompt.
func FuzzParseMessagesRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s",` +
		`"cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user",` +
		`"content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"text"}]}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n",` +
		`"input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":nul`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, e := parseMessagesRequest(body)
		if e != nil {
			return
		}
		if e := checkBreakpoints(p, defaultAnthropic); e != nil {
			return
		}
		if blocks := buildPrompt(p, newTokenCounter()); len(blocks) == 0 {
			t.Errorf("accepted request %s laid out no blocks", body)
		}
		_ = messagesHistory(p)
	})
}

// FuzzParseChatRequest holds that no request body makes the Chat Completions
// parser or the token sequence panic.
func FuzzParseChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text",` +
		`"text":"a"}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c",` +
		`"type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool",` +
		`"tool_call_id":"c","content":"r"}],"max_tokens":3}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"tool"`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, e := parseChatRequest(body)
		if e != nil {
			return
		}
		q := chatSequence(p, newTokenCounter())
		if q.total <= 0 {
			t.Errorf("accepted request %s counts %d tokens", body, q.total)
		}
		_, _ = q.stepKeys(digest{}, defaultOpenAI)
		_ = chatHistory(p)
	})
}
