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

// FuzzParseResponsesRequest holds that no request body makes the Responses
// parser, the call pairing check or the token sequence panic.
func FuzzParseResponsesRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","input":"hi"}`))
	f.Add([]byte(`{"model":"m","instructions":"be brief","input":[{"role":"user",` +
		`"content":[{"type":"input_text","text":"a","prompt_cache_breakpoint":` +
		`{"mode":"explicit","ttl":"12h"}}]},{"type":"function_call","call_id":"c",` +
		`"name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c",` +
		`"output":"r"}],"tools":[{"type":"function","name":"f","parameters":{}}],` +
		`"max_output_tokens":16,"prompt_cache_options":{"mode":"explicit"}}`))
	f.Add([]byte(`{"model":"m","input":[{"type":"message","role":"assistant",` +
		`"content":[{"type":"output_text","text":"x"}]}],"store":false}`))
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call_output"`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, e := parseResponsesRequest(body)
		if e != nil {
			return
		}
		if e := checkCallPairs(p.items); e != nil {
			return
		}
		q := responsesSequence(p, newTokenCounter())
		if q.total <= 0 {
			t.Errorf("accepted request %s counts %d tokens", body, q.total)
		}
		_ = q.writePlan(openaiBreakpointRules(0.1), p.cacheParams())
		_ = responsesHistory(p.items)
	})
}

// FuzzParseFault holds that a fault that parses prints back to itself.
func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"status=429;retry-after=2s", "cut=3", "stall=0", "drip=5ms",
		"error-event=2", "empty", "none", "status=5", "drip=-1s", "cut=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		fault, err := ParseFault(text)
		if err != nil {
			return
		}
		again, err := ParseFault(fault.String())
		if err != nil || again != fault {
			t.Errorf("%q parsed to %+v, printed %q, parsed back to %+v (%v)", text, fault,
				fault.String(), again, err)
		}
	})
}
