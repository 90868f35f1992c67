package openai

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// wireRequest is the body of a Chat Completions request, in wire order. It is
// built from structs only, so one logical request always serializes to the same
// bytes.
type wireRequest struct {
	Model                string         `json:"model"`
	Messages             []wireMessage  `json:"messages"`
	Tools                []wireTool     `json:"tools,omitempty"`
	MaxCompletionTokens  int            `json:"max_completion_tokens,omitempty"`
	MaxTokens            int            `json:"max_tokens,omitempty"`
	Stream               bool           `json:"stream"`
	StreamOptions        *streamOptions `json:"stream_options,omitempty"`
	PromptCacheKey       string         `json:"prompt_cache_key,omitempty"`
	PromptCacheRetention string         `json:"prompt_cache_retention,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// wireMessage is a message of any role. The field order gives each role its
// documented order: tool messages name their call before the content, assistant
// messages give the content (null when empty) before the tool calls.
type wireMessage struct {
	Role       string         `json:"role"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
	Content    *string        `json:"content"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
}

type wireToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type wireTool struct {
	Type     string           `json:"type"`
	Function wireToolFunction `json:"function"`
}

type wireToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// MarshalRequest returns the body Complete sends to the OpenAI API for req: a
// streaming Chat Completions request that asks for usage in the last chunk. The
// same logical request always gives the same bytes, and a request that extends
// another by more messages keeps the other's messages and tools bytes unchanged.
// The cache plan's breakpoints and TTLs are not sent; its Key is sent as
// prompt_cache_key and its Retention as prompt_cache_retention.
//
// It returns an error matching ErrInvalidRequest for a request the API would
// reject.
func MarshalRequest(req *providers.Request) ([]byte, error) {
	c := presets["openai"]
	return marshalRequest(req, &c)
}

// marshalRequest is MarshalRequest for a server that differs from the OpenAI API
// as c says.
func marshalRequest(req *providers.Request, c *Compat) ([]byte, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	wire := wireRequest{Model: req.Model, Stream: true}
	if c.MaxTokensField == "max_tokens" {
		wire.MaxTokens = req.MaxTokens
	} else {
		wire.MaxCompletionTokens = req.MaxTokens
	}
	if c.IncludeUsage {
		wire.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if c.SendCacheKey {
		wire.PromptCacheKey = req.Cache.Key
	}
	if c.SendCacheRetention {
		wire.PromptCacheRetention = req.Cache.Retention
	}

	messages, err := buildMessages(req.System, req.Messages)
	if err != nil {
		return nil, err
	}
	wire.Messages = messages
	tools, err := buildTools(req.Tools)
	if err != nil {
		return nil, err
	}
	wire.Tools = tools

	return encode(&wire)
}

func validate(req *providers.Request) error {
	switch {
	case req == nil:
		return fmt.Errorf("%w: nil request", ErrInvalidRequest)
	case req.Model == "":
		return fmt.Errorf("%w: no model", ErrInvalidRequest)
	case req.MaxTokens < 0:
		return fmt.Errorf("%w: negative max tokens", ErrInvalidRequest)
	case len(req.Messages) == 0:
		return fmt.Errorf("%w: no messages", ErrInvalidRequest)
	}
	switch r := req.Cache.Retention; r {
	case "", "in_memory", "24h":
	default:
		return fmt.Errorf("%w: unknown cache retention %q", ErrInvalidRequest, r)
	}
	return nil
}

// buildMessages puts the system prompt first, when there is one, then one wire
// message per neutral message.
func buildMessages(system string, msgs []providers.Message) ([]wireMessage, error) {
	out := make([]wireMessage, 0, len(msgs)+1)
	if system != "" {
		out = append(out, wireMessage{Role: "system", Content: &system})
	}
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case providers.RoleUser:
			out = append(out, wireMessage{Role: "user", Content: &m.Text})
		case providers.RoleAssistant:
			if m.Text == "" && len(m.ToolCalls) == 0 {
				return nil, fmt.Errorf("%w: message %d: empty assistant message",
					ErrInvalidRequest, i)
			}
			out = append(out, assistantMessage(m))
		case providers.RoleTool:
			out = append(out, wireMessage{Role: "tool", ToolCallID: m.ToolCallID, Content: &m.Text})
		default:
			return nil, fmt.Errorf("%w: message %d: unknown role %q", ErrInvalidRequest, i, m.Role)
		}
	}
	return out, nil
}

// assistantMessage has null content when there is no text, and the tool calls with
// "{}" for empty arguments: the API wants a JSON text there.
func assistantMessage(m *providers.Message) wireMessage {
	w := wireMessage{Role: "assistant"}
	if m.Text != "" {
		w.Content = &m.Text
	}
	for _, call := range m.ToolCalls {
		args := call.Arguments
		if args == "" {
			args = "{}"
		}
		w.ToolCalls = append(w.ToolCalls, wireToolCall{
			ID:       call.ID,
			Type:     "function",
			Function: wireFunction{Name: call.Name, Arguments: args},
		})
	}
	return w
}

func buildTools(tools []providers.Tool) ([]wireTool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]wireTool, len(tools))
	for i, t := range tools {
		schema := t.InputSchema
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = nil
		} else if !json.Valid(schema) {
			return nil, fmt.Errorf("%w: tool %q: parameters are not JSON",
				ErrInvalidRequest, t.Name)
		}
		out[i] = wireTool{Type: "function", Function: wireToolFunction{
			Name: t.Name, Description: t.Description, Parameters: schema,
		}}
	}
	return out, nil
}

// encode serializes without HTML escaping, so text reaches the model as written.
func encode(wire *wireRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
