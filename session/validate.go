package session

import (
	"encoding/json"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// checkPairing reports whether every tool call of req is answered by exactly one
// tool result right after it, before anything else is said, and every tool result
// answers a call of the answer just before it: the rule both providers enforce,
// parallel calls included. A violation is a bug of the layout; the request must
// not be sent. It returns an error matching ErrToolPairing.
func checkPairing(req *providers.Request) error {
	var open map[string]bool // calls of the last answer without a result yet
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case providers.RoleTool:
			if !open[m.ToolCallID] {
				return fmt.Errorf("%w: message %d answers call %q, which is not waiting",
					ErrToolPairing, i, m.ToolCallID)
			}
			delete(open, m.ToolCallID)
			continue
		}
		if len(open) > 0 {
			return fmt.Errorf("%w: message %d comes before the results of %d call(s)",
				ErrToolPairing, i, len(open))
		}
		open = nil
		if m.Role == providers.RoleAssistant && len(m.ToolCalls) > 0 {
			open = make(map[string]bool, len(m.ToolCalls))
			for _, c := range m.ToolCalls {
				if c.ID == "" || open[c.ID] {
					return fmt.Errorf("%w: message %d has an empty or repeated call id",
						ErrToolPairing, i)
				}
				open[c.ID] = true
			}
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: the request ends before the results of %d call(s)",
			ErrToolPairing, len(open))
	}
	return nil
}

// CheckAnthropicPairing checks the body of an Anthropic Messages request: every
// tool_use block of an assistant message is answered by exactly one tool_result
// block of the user message right after it, and every tool_result answers a
// tool_use of the assistant message right before. It returns an error matching
// ErrToolPairing for a violation, or for a body that is not a Messages request.
func CheckAnthropicPairing(body []byte) error {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Type      string `json:"type"`
				ID        string `json:"id"`
				ToolUseID string `json:"tool_use_id"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: not a messages request: %v", ErrToolPairing, err)
	}
	open := map[string]bool{}
	for i, m := range req.Messages {
		answered := map[string]bool{}
		calls := map[string]bool{}
		for _, b := range m.Content {
			switch {
			case b.Type == "tool_result" && (m.Role != "user" || !open[b.ToolUseID] ||
				answered[b.ToolUseID]):
				return fmt.Errorf("%w: message %d: tool_result for %q answers no open "+
					"tool_use", ErrToolPairing, i, b.ToolUseID)
			case b.Type == "tool_result":
				answered[b.ToolUseID] = true
			case b.Type == "tool_use" && (m.Role != "assistant" || b.ID == "" || calls[b.ID]):
				return fmt.Errorf("%w: message %d: misplaced or repeated tool_use %q",
					ErrToolPairing, i, b.ID)
			case b.Type == "tool_use":
				calls[b.ID] = true
			}
		}
		if len(answered) != len(open) {
			return fmt.Errorf("%w: message %d leaves %d tool_use block(s) unanswered",
				ErrToolPairing, i, len(open)-len(answered))
		}
		open = calls
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: the request ends with %d unanswered tool_use block(s)",
			ErrToolPairing, len(open))
	}
	return nil
}

// CheckOpenAIPairing checks the body of an OpenAI Chat Completions request: every
// tool call of an assistant message is answered by exactly one "tool" message
// among those right after it, and every tool message answers a call of the
// assistant message before them. It returns an error matching ErrToolPairing
// for a violation, or for a body that is not a chat request.
func CheckOpenAIPairing(body []byte) error {
	var req struct {
		Messages []struct {
			Role       string `json:"role"`
			ToolCallID string `json:"tool_call_id"`
			ToolCalls  []struct {
				ID string `json:"id"`
			} `json:"tool_calls"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: not a chat request: %v", ErrToolPairing, err)
	}
	msgs := make([]providers.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = providers.Message{Role: providers.Role(m.Role), ToolCallID: m.ToolCallID}
		for _, c := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, providers.ToolCall{ID: c.ID})
		}
	}
	return checkPairing(&providers.Request{Messages: msgs})
}
