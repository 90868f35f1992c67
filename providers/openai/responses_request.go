package openai

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// emptyParameters stands in for a tool without a schema: the Responses API
// requires parameters.
var emptyParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// responsesRequest is the body of a Responses API request, in wire order: the
// instructions and the tools (which the model sees before the input), then the
// input items. It is built from structs only, so one logical request always
// serializes to the same bytes.
type responsesRequest struct {
	Model                string          `json:"model"`
	Instructions         string          `json:"instructions,omitempty"`
	Tools                []responsesTool `json:"tools,omitempty"`
	Input                []inputItem     `json:"input"`
	MaxOutputTokens      int             `json:"max_output_tokens,omitempty"`
	Store                bool            `json:"store"`
	Stream               bool            `json:"stream"`
	PromptCacheKey       string          `json:"prompt_cache_key,omitempty"`
	PromptCacheRetention string          `json:"prompt_cache_retention,omitempty"`
}

// responsesTool is a function tool. The API requires parameters and strict;
// strict is sent as false, since strict mode refuses any schema that does not list
// every property as required.
type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

// inputItem is an input item of any type; the fields a type does not use are
// empty and omitted.
//
//   - message: Role and Content (sent even when empty).
//   - function_call: CallID, Name and Arguments, a call the model made.
//   - function_call_output: CallID and Output, the result of that call.
type inputItem struct {
	Type      string  `json:"type"`
	Role      string  `json:"role,omitempty"`
	Content   *string `json:"content,omitempty"`
	CallID    string  `json:"call_id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Arguments string  `json:"arguments,omitempty"`
	Output    *string `json:"output,omitempty"`
}

// MarshalResponsesRequest returns the body ResponsesClient.Complete sends for req:
// a streaming, unstored Responses request whose input is the whole conversation.
// The system prompt goes in instructions; an assistant message becomes a message
// item for its text, then one function_call item per call; a tool message becomes
// a function_call_output item. The cache plan's Key is sent as prompt_cache_key
// and its Retention as prompt_cache_retention; breakpoints and TTLs are not sent.
// The same logical request always gives the same bytes.
//
// It returns an error matching ErrInvalidRequest for a request the API would
// reject.
func MarshalResponsesRequest(req *providers.Request) ([]byte, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	wire := responsesRequest{
		Model:                req.Model,
		Instructions:         req.System,
		MaxOutputTokens:      req.MaxTokens,
		Stream:               true,
		PromptCacheKey:       req.Cache.Key,
		PromptCacheRetention: req.Cache.Retention,
	}
	tools, err := responsesTools(req.Tools)
	if err != nil {
		return nil, err
	}
	wire.Tools = tools
	input, err := inputItems(req.Messages)
	if err != nil {
		return nil, err
	}
	wire.Input = input

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func responsesTools(tools []providers.Tool) ([]responsesTool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]responsesTool, len(tools))
	for i, t := range tools {
		schema := t.InputSchema
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = emptyParameters
		} else if !json.Valid(schema) {
			return nil, fmt.Errorf("%w: tool %q: parameters are not JSON",
				ErrInvalidRequest, t.Name)
		}
		out[i] = responsesTool{Type: "function", Name: t.Name, Description: t.Description,
			Parameters: schema}
	}
	return out, nil
}

// inputItems translates the conversation, one or more items per message.
func inputItems(msgs []providers.Message) ([]inputItem, error) {
	out := make([]inputItem, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case providers.RoleUser:
			out = append(out, inputItem{Type: "message", Role: "user", Content: &m.Text})
		case providers.RoleAssistant:
			if m.Text == "" && len(m.ToolCalls) == 0 {
				return nil, fmt.Errorf("%w: message %d: empty assistant message",
					ErrInvalidRequest, i)
			}
			out = appendAssistant(out, m)
		case providers.RoleTool:
			out = append(out, inputItem{Type: "function_call_output", CallID: m.ToolCallID,
				Output: &m.Text})
		default:
			return nil, fmt.Errorf("%w: message %d: unknown role %q", ErrInvalidRequest, i, m.Role)
		}
	}
	return out, nil
}

// appendAssistant adds the assistant's text, if any, and its calls, with "{}" for
// empty arguments: the API wants a JSON text there.
func appendAssistant(out []inputItem, m *providers.Message) []inputItem {
	if m.Text != "" {
		out = append(out, inputItem{Type: "message", Role: "assistant", Content: &m.Text})
	}
	for _, call := range m.ToolCalls {
		args := call.Arguments
		if args == "" {
			args = "{}"
		}
		out = append(out, inputItem{Type: "function_call", CallID: call.ID, Name: call.Name,
			Arguments: args})
	}
	return out
}
