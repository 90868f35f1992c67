package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

var errUnsupportedResult = errors.New(
	"the simulator supports only text blocks in tool_result content")

// messagesRequest is the part of an Anthropic Messages request the simulator
// reads. Other fields (temperature, tool_choice, metadata, ...) are accepted and
// ignored.
type messagesRequest struct {
	Model        string            `json:"model"`
	MaxTokens    *int              `json:"max_tokens"`
	System       json.RawMessage   `json:"system"`
	Messages     []messagesMessage `json:"messages"`
	Tools        []messagesTool    `json:"tools"`
	Stream       bool              `json:"stream"`
	CacheControl *cacheControl     `json:"cache_control"`
}

type messagesMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type messagesTool struct {
	Type         string          `json:"type"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl *cacheControl   `json:"cache_control"`
}

// cacheControl is a breakpoint: {"type":"ephemeral","ttl":"5m"|"1h"}.
type cacheControl struct {
	Type string `json:"type"`
	TTL  string `json:"ttl"`
}

// contentBlock is one block of a system prompt or a message.
type contentBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	ToolUseID    string          `json:"tool_use_id"`
	Content      json.RawMessage `json:"content"`
	IsError      bool            `json:"is_error"`
	CacheControl *cacheControl   `json:"cache_control"`
}

// parsedRequest is a Messages request whose contents have been decoded and
// checked: every block is of a type the simulator knows and carries what it needs.
type parsedRequest struct {
	model     string
	maxTokens int
	stream    bool
	tools     []messagesTool
	system    []contentBlock
	messages  []parsedMessage
	auto      *cacheControl // the top-level cache_control, nil when absent
}

type parsedMessage struct {
	role   string
	blocks []contentBlock
}

// parseMessagesRequest decodes and validates a Messages request body. The checks
// and their messages follow what the Messages API answers with 400
// invalid_request_error.
func parseMessagesRequest(body []byte) (*parsedRequest, *apiError) {
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, invalidRequest("invalid JSON body: %v", err)
	}
	switch {
	case req.Model == "":
		return nil, invalidRequest("model: Field required")
	case req.MaxTokens == nil:
		return nil, invalidRequest("max_tokens: Field required")
	case *req.MaxTokens < 1:
		return nil, invalidRequest("max_tokens: Input should be greater than or equal to 1")
	case req.Messages == nil:
		return nil, invalidRequest("messages: Field required")
	case len(req.Messages) == 0:
		return nil, invalidRequest("messages: at least one message is required")
	}
	p := &parsedRequest{model: req.Model, maxTokens: *req.MaxTokens, stream: req.Stream,
		tools: req.Tools, auto: req.CacheControl}

	var e *apiError
	if e = checkTools(req.Tools); e != nil {
		return nil, e
	}
	if p.system, e = parseSystem(req.System); e != nil {
		return nil, e
	}
	if p.messages, e = parseMessages(req.Messages); e != nil {
		return nil, e
	}
	if e = checkRoles(p.messages); e != nil {
		return nil, e
	}
	if e = checkToolPairs(p.messages); e != nil {
		return nil, e
	}
	return p, nil
}

func checkTools(tools []messagesTool) *apiError {
	for i, t := range tools {
		if t.Name == "" {
			return invalidRequest("tools.%d.name: Field required", i)
		}
		custom := t.Type == "" || t.Type == "custom"
		if custom && len(t.InputSchema) == 0 {
			return invalidRequest("tools.%d.input_schema: Field required", i)
		}
	}
	return nil
}

// parseSystem decodes the system prompt: absent, a string, or text blocks.
func parseSystem(raw json.RawMessage) ([]contentBlock, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	blocks, e := decodeBlocks(raw, "system")
	if e != nil {
		return nil, e
	}
	if len(blocks) == 1 && blocks[0].Text == "" && raw[0] == '"' {
		return nil, nil // an empty system string is no system prompt
	}
	for i, b := range blocks {
		if b.Type != "text" {
			return nil, invalidRequest("system.%d.type: Input should be 'text'", i)
		}
		if b.Text == "" {
			return nil, invalidRequest("system.%d.text: text content blocks must be non-empty", i)
		}
	}
	return blocks, nil
}

// decodeBlocks decodes a content that is a string (one text block) or an array
// of blocks.
func decodeBlocks(raw json.RawMessage, where string) ([]contentBlock, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidRequest("%s: %v", where, err)
		}
		return []contentBlock{{Type: "text", Text: s}}, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, invalidRequest("%s: Input should be a valid list", where)
	}
	var blocks []contentBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, invalidRequest("%s: %v", where, err)
	}
	return blocks, nil
}

// parseMessages decodes every message's content and checks each block.
func parseMessages(msgs []messagesMessage) ([]parsedMessage, *apiError) {
	out := make([]parsedMessage, 0, len(msgs))
	for i, m := range msgs {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, invalidRequest("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if len(m.Content) == 0 {
			return nil, invalidRequest("messages.%d.content: Field required", i)
		}
		blocks, e := decodeBlocks(m.Content, "messages."+itoa(i)+".content")
		if e != nil {
			return nil, e
		}
		final := i == len(msgs)-1 && m.Role == "assistant"
		if e := checkBlocks(i, m.Role, blocks, final); e != nil {
			return nil, e
		}
		out = append(out, parsedMessage{role: m.Role, blocks: blocks})
	}
	return out, nil
}

// checkBlocks checks the blocks of message i. Only the final assistant message
// (a prefill) may be empty.
func checkBlocks(i int, role string, blocks []contentBlock, final bool) *apiError {
	empty := len(blocks) == 0 || (len(blocks) == 1 && blocks[0].Type == "text" &&
		blocks[0].Text == "")
	if empty {
		if final {
			return nil
		}
		return invalidRequest("messages.%d: all messages must have non-empty content "+
			"except for the optional final assistant message", i)
	}
	for j, b := range blocks {
		if e := checkBlock(i, j, role, b); e != nil {
			return e
		}
	}
	return nil
}

func checkBlock(i, j int, role string, b contentBlock) *apiError {
	where := "messages." + itoa(i) + ".content." + itoa(j)
	switch {
	case b.Type == "text":
		if b.Text == "" {
			return invalidRequest("%s.text: text content blocks must be non-empty", where)
		}
	case b.Type == "tool_use" && role == "assistant":
		if b.ID == "" || b.Name == "" {
			return invalidRequest("%s: tool_use blocks need an id and a name", where)
		}
		if in := bytes.TrimSpace(b.Input); len(in) == 0 || in[0] != '{' ||
			!json.Valid(in) {
			return invalidRequest("%s.input: Input should be a valid dictionary", where)
		}
	case b.Type == "tool_result" && role == "user":
		if b.ToolUseID == "" {
			return invalidRequest("%s.tool_use_id: Field required", where)
		}
		if _, err := toolResultText(b.Content); err != nil {
			return invalidRequest("%s.content: %v", where, err)
		}
	case b.Type == "tool_use", b.Type == "tool_result":
		return invalidRequest("%s: %s blocks are not allowed in %s messages",
			where, b.Type, role)
	default:
		return invalidRequest("%s.type: the simulator supports text, tool_use and "+
			"tool_result blocks, not %q", where, b.Type)
	}
	return nil
}

// toolResultText returns the text of a tool_result content: a string, or text
// blocks joined; absent or null is "".
func toolResultText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var blocks []contentBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, blk := range blocks {
		if blk.Type != "text" {
			return "", errUnsupportedResult
		}
		b.WriteString(blk.Text)
	}
	return b.String(), nil
}

// checkRoles enforces that the conversation starts with the user and that roles
// alternate.
func checkRoles(msgs []parsedMessage) *apiError {
	if msgs[0].role != "user" {
		return invalidRequest(`messages: first message must use the "user" role`)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].role == msgs[i-1].role {
			return invalidRequest(`messages: roles must alternate between "user" and `+
				`"assistant", but found multiple %q roles in a row`, msgs[i].role)
		}
	}
	return nil
}

// checkToolPairs enforces that every tool_use is answered by a tool_result in
// the next message, and that every tool_result answers a tool_use of the
// previous message.
func checkToolPairs(msgs []parsedMessage) *apiError {
	for i, m := range msgs {
		if m.role == "assistant" {
			if e := checkAnswered(msgs, i); e != nil {
				return e
			}
			continue
		}
		used := map[string]bool{}
		if i > 0 {
			for _, b := range msgs[i-1].blocks {
				if b.Type == "tool_use" {
					used[b.ID] = true
				}
			}
		}
		for j, b := range m.blocks {
			if b.Type == "tool_result" && !used[b.ToolUseID] {
				return invalidRequest("messages.%d.content.%d: unexpected `tool_use_id` "+
					"found in `tool_result` blocks: %s. Each `tool_result` block must have "+
					"a corresponding `tool_use` block in the previous message.",
					i, j, b.ToolUseID)
			}
		}
	}
	return nil
}

// checkAnswered checks that the tool_use blocks of assistant message i are all
// answered in message i+1.
func checkAnswered(msgs []parsedMessage, i int) *apiError {
	answered := map[string]bool{}
	if i+1 < len(msgs) {
		for _, b := range msgs[i+1].blocks {
			if b.Type == "tool_result" {
				answered[b.ToolUseID] = true
			}
		}
	}
	var missing []string
	for _, b := range msgs[i].blocks {
		if b.Type == "tool_use" && !answered[b.ID] {
			missing = append(missing, b.ID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return invalidRequest("messages.%d: `tool_use` ids were found without `tool_result` "+
		"blocks immediately after: %s. Each `tool_use` block must have a corresponding "+
		"`tool_result` block in the next message.", i, strings.Join(missing, ", "))
}
