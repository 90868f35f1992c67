package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// chatRequest is the part of an OpenAI Chat Completions request the simulator
// reads. Other fields (temperature, tool_choice, ...) are accepted and ignored.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	Tools               []chatTool     `json:"tools"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	PromptCacheKey      string         `json:"prompt_cache_key"`
	// PromptCacheRetention is "in_memory" or "24h"; "" leaves the default.
	PromptCacheRetention string `json:"prompt_cache_retention"`
	// PromptCacheOptions set the breakpoint mode and TTL of newer models.
	PromptCacheOptions *cacheOptions `json:"prompt_cache_options"`
}

// cacheOptions are prompt_cache_options: {"mode":"implicit"|"explicit",
// "ttl":"30m"|"12h"}, both optional.
type cacheOptions struct {
	Mode string `json:"mode"`
	TTL  string `json:"ttl"`
}

// promptBreakpoint is a content part's prompt_cache_breakpoint:
// {"mode":"explicit","ttl":"30m"|"12h"}, ttl optional.
type promptBreakpoint struct {
	Mode string `json:"mode"`
	TTL  string `json:"ttl"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is one message of an OpenAI chat: system, developer, user,
// assistant (content, tool_calls) or tool (tool_call_id, content). Recorded
// conversations use the same shape.
type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// chatTool is a tool definition: {"type":"function","function":{...}}.
type chatTool struct {
	Type     string           `json:"type"`
	Function chatToolFunction `json:"function"`
}

type chatToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// chatPart is one part of an array content: only text parts carry text, and
// only they count. A part may end with a cache breakpoint.
type chatPart struct {
	Type       string            `json:"type"`
	Text       string            `json:"text"`
	Breakpoint *promptBreakpoint `json:"prompt_cache_breakpoint"`
}

var errBadContent = errors.New("content must be a string, an array of parts or null")

// contentText returns the text of an OpenAI message content: a string as is,
// the text parts of an array joined, "" for null or absent.
func contentText(raw json.RawMessage) (string, error) {
	parts, err := contentParts(raw)
	if err != nil || len(parts) == 0 {
		return "", err
	}
	if len(parts) == 1 {
		return parts[0].Text, nil
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// contentParts returns the text parts of an OpenAI message content: a string is
// one part, an array keeps its text parts (parts of other types carry no text),
// null or absent is none.
func contentParts(raw json.RawMessage) ([]chatPart, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []chatPart{{Type: "text", Text: s}}, nil
	case '[':
		var parts []chatPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, err
		}
		text := parts[:0]
		for _, p := range parts {
			if p.Type == "text" {
				text = append(text, p)
			}
		}
		return text, nil
	}
	return nil, errBadContent
}

// compactJSON returns raw without insignificant white space, or raw unchanged if
// it is not valid JSON.
func compactJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
