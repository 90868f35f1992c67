package transport

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// inputItem is one item of a Responses API input or of a conversation: a message
// (type "message", or no type with a role), a function_call or a
// function_call_output. Other item types are refused.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// parseInput reads an input: a string (one user message) or an array of items.
func parseInput(raw json.RawMessage) ([]inputItem, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text, _ := json.Marshal(s)
		return []inputItem{{Type: "message", Role: "user", Content: text}}, nil
	}
	var items []inputItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalidRequest("input", "input must be a string or an array of items")
	}
	return items, nil
}

// sessionItems turns input items into the session's items. System and developer
// messages that lead the input are returned apart, as system text. Consecutive
// assistant output (a message and the function calls after it) becomes one
// answer, as the model gave it.
func sessionItems(in []inputItem) (system []string, items []session.Item, aerr *apiError) {
	for i := range in {
		it := &in[i]
		kind := it.Type
		if kind == "" && it.Role != "" {
			kind = "message"
		}
		switch kind {
		case "message":
			text, aerr := chatContent(it.Content)
			if aerr != nil {
				return nil, nil, withParam(aerr, "input")
			}
			switch it.Role {
			case "system", "developer":
				if len(items) > 0 {
					return nil, nil, invalidRequest("input", "system and developer messages "+
						"are taken only before the first other item; use instructions")
				}
				system = append(system, text)
			case "user":
				items = append(items, session.Item{Kind: session.KindUser, Text: text})
			case "assistant":
				items = appendAnswer(items, text, nil)
			default:
				return nil, nil, invalidRequest("input", "message role %q is not supported",
					it.Role)
			}
		case "function_call":
			call := providers.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}
			items = appendAnswer(items, "", &call)
		case "function_call_output":
			out, aerr := chatContent(it.Output)
			if aerr != nil {
				return nil, nil, withParam(aerr, "input")
			}
			items = append(items, session.Item{Kind: session.KindToolResult,
				ToolCallID: it.CallID, Text: out})
		default:
			return nil, nil, invalidRequest("input", "input items of type %q are not supported",
				it.Type)
		}
	}
	return system, items, nil
}

// appendAnswer adds assistant text or a function call to the answer that ends
// items, or starts a new answer. Text after a function call starts a new one.
func appendAnswer(items []session.Item, text string, call *providers.ToolCall) []session.Item {
	n := len(items)
	if n > 0 && items[n-1].Kind == session.KindAssistant &&
		(call != nil || len(items[n-1].ToolCalls) == 0) {
		last := &items[n-1]
		if call != nil {
			last.ToolCalls = append(last.ToolCalls, *call)
		} else {
			last.Text = strings.TrimSpace(last.Text + "\n" + text)
		}
		return items
	}
	it := session.Item{Kind: session.KindAssistant, Text: text}
	if call != nil {
		it.ToolCalls = []providers.ToolCall{*call}
	}
	return append(items, it)
}

func withParam(e *apiError, param string) *apiError {
	e.Param = param
	return e
}

// Output and conversation items, as the Responses API shows them.

type messageItem struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type outputText struct {
	Type        string     `json:"type"`
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
}

type inputText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type functionCallItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type functionOutputItem struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	CallID string `json:"call_id"`
	Output string `json:"output"`
}

// itemID names part part of the event at seq of a session; the same event gives
// the same IDs on every read.
func itemID(prefix, sessionID string, seq uint64, part int) string {
	if part == 0 {
		return fmt.Sprintf("%s_%s_%d", prefix, sessionID, seq)
	}
	return fmt.Sprintf("%s_%s_%d_%d", prefix, sessionID, seq, part)
}

func newOutputText(text string) outputText {
	return outputText{Type: "output_text", Text: text, Annotations: []struct{}{},
		Logprobs: []struct{}{}}
}

// answerItems returns the output items of an answer: its message, if it has text,
// then one function_call per tool call.
func answerItems(sessionID string, e *session.Event) []any {
	var out []any
	if e.Text != "" {
		out = append(out, messageItem{ID: itemID("msg", sessionID, e.Seq, 0), Type: "message",
			Status: "completed", Role: "assistant", Content: []any{newOutputText(e.Text)}})
	}
	if e.Status != providers.StatusComplete {
		return out
	}
	for i, c := range e.ToolCalls {
		out = append(out, functionCallItem{ID: itemID("fc", sessionID, e.Seq, i+1),
			Type: "function_call", Status: "completed", CallID: c.ID, Name: c.Name,
			Arguments: c.Arguments})
	}
	return out
}

// eventItems returns the conversation items of a stored event.
func eventItems(sessionID string, e *session.Event) []any {
	switch e.Kind {
	case session.KindUser:
		return []any{messageItem{ID: itemID("msg", sessionID, e.Seq, 0), Type: "message",
			Status: "completed", Role: "user",
			Content: []any{inputText{Type: "input_text", Text: e.Text}}}}
	case session.KindToolResult:
		return []any{functionOutputItem{ID: itemID("fco", sessionID, e.Seq, 0),
			Type: "function_call_output", Status: "completed", CallID: e.ToolCallID,
			Output: e.Text}}
	case session.KindAssistant:
		return answerItems(sessionID, e)
	}
	return nil
}
