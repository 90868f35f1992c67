package session

import (
	"errors"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

func TestValidatorsCatchEverySplitOfCallsAndResults(t *testing.T) {
	user := func(text string) providers.Message {
		return providers.Message{Role: providers.RoleUser, Text: text}
	}
	calls := func(ids ...string) providers.Message {
		m := providers.Message{Role: providers.RoleAssistant}
		for _, id := range ids {
			m.ToolCalls = append(m.ToolCalls, providers.ToolCall{ID: id, Name: "f"})
		}
		return m
	}
	result := func(id string) providers.Message {
		return providers.Message{Role: providers.RoleTool, ToolCallID: id, Text: "ok"}
	}
	answer := providers.Message{Role: providers.RoleAssistant, Text: "done"}
	tests := []struct {
		name string
		msgs []providers.Message
		ok   bool
	}{
		{"parallel calls each answered pair up",
			[]providers.Message{user("q"), calls("a", "b"), result("b"), result("a"), answer,
				user("next")}, true},
		{"a conversation without tools pairs up", []providers.Message{user("q")}, true},
		{"a call whose result is missing is caught",
			[]providers.Message{user("q"), calls("a", "b"), result("a"), answer, user("n")}, false},
		{"a result without its call is caught",
			[]providers.Message{user("q"), result("a"), answer, user("n")}, false},
		{"a result after the user spoke is caught",
			[]providers.Message{user("q"), calls("a"), user("wait"), result("a")}, false},
		{"a result answering an older answer's call is caught",
			[]providers.Message{user("q"), calls("a"), result("a"), answer, user("n"),
				calls("b"), result("a"), result("b")}, false},
		{"the same result twice is caught",
			[]providers.Message{user("q"), calls("a"), result("a"), result("a"), user("n")},
			false},
		{"a request that ends before the results is caught",
			[]providers.Message{user("q"), calls("a")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &providers.Request{Model: "m", MaxTokens: 10, Messages: tt.msgs}
			check := func(what string, err error) {
				t.Helper()
				if tt.ok && err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !tt.ok && !errors.Is(err, ErrToolPairing) {
					t.Fatalf("%s: %v, want ErrToolPairing", what, err)
				}
			}
			check("neutral", checkPairing(req))
			body, err := openai.MarshalRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			check("openai", CheckOpenAIPairing(body))
			if body, err := anthropic.MarshalRequest(req); err == nil {
				check("anthropic", CheckAnthropicPairing(body))
			} else if tt.ok {
				t.Fatalf("the anthropic adapter refuses a good request: %v", err)
			}
		})
	}
}

func TestAnthropicValidatorReadsTheWireShape(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"results folded into one user message pair up",
			`{"messages":[{"role":"user","content":[{"type":"text","text":"q"}]},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"a"},` +
				`{"type":"tool_use","id":"b"}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"},` +
				`{"type":"tool_result","tool_use_id":"b"},{"type":"text","text":"and"}]}]}`, true},
		{"a tool_use answered in a later message is caught",
			`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a"}]},` +
				`{"role":"user","content":[{"type":"text","text":"hm"}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`, false},
		{"a tool_result in an assistant message is caught",
			`{"messages":[{"role":"assistant","content":` +
				`[{"type":"tool_result","tool_use_id":"a"}]}]}`, false},
		{"a body that is not JSON is caught", `{"messages":`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAnthropicPairing([]byte(tt.body))
			if tt.ok != (err == nil) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestRequestThatBreaksThePairingIsNotSent(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{})
	bad := &providers.Request{Model: "claude-sonnet-4-5", MaxTokens: 10,
		Messages: []providers.Message{{Role: providers.RoleTool, ToolCallID: "x", Text: "?"}}}
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	s.answer(ctx, bad, 1, s.mgr.now())
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Status != StatusFailed || ans.ErrorCode != "layout_invalid" {
		t.Fatalf("answer %+v: want failed with layout_invalid", ans)
	}
	if len(h.prov.answerRequests()) != 0 {
		t.Fatal("the request was sent")
	}
}
