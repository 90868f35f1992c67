package anthropic

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/stated-dev/stated/providers"
)

// maxBreakpoints is the most cache_control markers one request may carry.
const maxBreakpoints = 4

// defaultInputSchema stands in for a tool without a schema: the API requires one.
var defaultInputSchema = json.RawMessage(`{"type":"object"}`)

// emptyInput is the input of a tool call whose arguments are empty or not a JSON
// object: the API requires an object.
var emptyInput = json.RawMessage(`{}`)

// wireRequest is the body of a Messages request. The field order is the wire order
// and also the order of the prompt prefix: tools, then system, then messages. It is
// built from structs only, so one logical request always serializes to the same
// bytes.
type wireRequest struct {
	Model     string        `json:"model"`
	MaxTokens int           `json:"max_tokens"`
	Tools     []wireTool    `json:"tools,omitempty"`
	System    []wireBlock   `json:"system,omitempty"`
	Messages  []wireMessage `json:"messages"`
	// CacheControl is the request-level marker of automatic caching.
	CacheControl *cacheControl `json:"cache_control,omitempty"`
	Stream       bool          `json:"stream"`
}

type wireTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl *cacheControl   `json:"cache_control,omitempty"`
}

type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// wireBlock is a content block of any type; the fields a type does not use are
// empty and omitted.
type wireBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      string          `json:"content,omitempty"`
	IsError      bool            `json:"is_error,omitempty"`
	CacheControl *cacheControl   `json:"cache_control,omitempty"`
}

type cacheControl struct {
	Type string `json:"type"`
	TTL  string `json:"ttl,omitempty"`
}

// MarshalRequest returns the body Complete sends for req: a streaming Messages
// request. The same logical request always gives the same bytes, and a request
// that extends another by more messages keeps the other's tools, system and
// messages bytes unchanged except where cache_control markers move.
//
// It returns an error matching ErrInvalidRequest for a request the API would
// reject (a 1-hour breakpoint after a 5-minute one included), and
// ErrTooManyBreakpoints when req.Cache places more than four markers, the
// request-level one of automatic caching included.
func MarshalRequest(req *providers.Request) ([]byte, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	wire := wireRequest{Model: req.Model, MaxTokens: req.MaxTokens, Stream: true}

	tools, err := buildTools(req.Tools)
	if err != nil {
		return nil, err
	}
	wire.Tools = tools
	if req.System != "" {
		wire.System = []wireBlock{{Type: "text", Text: req.System}}
	}
	messages, wireOf, err := buildMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	wire.Messages = messages

	if err := placeBreakpoints(&wire, wireOf, req.Cache); err != nil {
		return nil, err
	}
	return encode(&wire)
}

func validate(req *providers.Request) error {
	switch {
	case req == nil:
		return fmt.Errorf("%w: nil request", ErrInvalidRequest)
	case req.Model == "":
		return fmt.Errorf("%w: no model", ErrInvalidRequest)
	case req.MaxTokens <= 0:
		return fmt.Errorf("%w: max tokens must be positive", ErrInvalidRequest)
	case len(req.Messages) == 0:
		return fmt.Errorf("%w: no messages", ErrInvalidRequest)
	}
	return nil
}

func buildTools(tools []providers.Tool) ([]wireTool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]wireTool, len(tools))
	for i, t := range tools {
		schema := t.InputSchema
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = defaultInputSchema
		} else if !json.Valid(schema) {
			return nil, fmt.Errorf("%w: tool %q: input schema is not JSON",
				ErrInvalidRequest, t.Name)
		}
		out[i] = wireTool{Name: t.Name, Description: t.Description, InputSchema: schema}
	}
	return out, nil
}

// buildMessages translates the conversation. Consecutive tool messages become one
// user message of tool_result blocks, and a user message right after them joins
// that message, because the API wants user and assistant to alternate. wireOf[i] is
// the index of the wire message that neutral message i ended up in.
func buildMessages(msgs []providers.Message) (out []wireMessage, wireOf []int, err error) {
	out = make([]wireMessage, 0, len(msgs))
	wireOf = make([]int, len(msgs))
	afterTool := false
	for i, m := range msgs {
		switch m.Role {
		case providers.RoleUser:
			var blocks []wireBlock
			if m.Text != "" {
				blocks = []wireBlock{{Type: "text", Text: m.Text}}
			}
			if afterTool {
				last := &out[len(out)-1]
				last.Content = append(last.Content, blocks...)
			} else if len(blocks) == 0 {
				return nil, nil, fmt.Errorf("%w: message %d: empty user message",
					ErrInvalidRequest, i)
			} else {
				out = append(out, wireMessage{Role: "user", Content: blocks})
			}
			afterTool = false
		case providers.RoleAssistant:
			blocks := assistantBlocks(m)
			if len(blocks) == 0 {
				return nil, nil, fmt.Errorf("%w: message %d: empty assistant message",
					ErrInvalidRequest, i)
			}
			out = append(out, wireMessage{Role: "assistant", Content: blocks})
			afterTool = false
		case providers.RoleTool:
			block := toolResultBlock(m)
			if afterTool {
				last := &out[len(out)-1]
				last.Content = append(last.Content, block)
			} else {
				out = append(out, wireMessage{Role: "user", Content: []wireBlock{block}})
			}
			afterTool = true
		default:
			return nil, nil, fmt.Errorf("%w: message %d: unknown role %q",
				ErrInvalidRequest, i, m.Role)
		}
		wireOf[i] = len(out) - 1
	}
	return out, wireOf, nil
}

// assistantBlocks is the text, if any (the API rejects empty text blocks), then one
// tool_use block per call.
func assistantBlocks(m providers.Message) []wireBlock {
	blocks := make([]wireBlock, 0, 1+len(m.ToolCalls))
	if m.Text != "" {
		blocks = append(blocks, wireBlock{Type: "text", Text: m.Text})
	}
	for _, call := range m.ToolCalls {
		blocks = append(blocks, wireBlock{
			Type:  "tool_use",
			ID:    call.ID,
			Name:  call.Name,
			Input: toolInput(call.Arguments),
		})
	}
	return blocks
}

func toolResultBlock(m providers.Message) wireBlock {
	return wireBlock{
		Type:      "tool_result",
		ToolUseID: m.ToolCallID,
		Content:   m.Text,
		IsError:   m.IsError,
	}
}

// toolInput is the arguments as a JSON object, or {} when they are empty or not a
// JSON object.
func toolInput(arguments string) json.RawMessage {
	trimmed := strings.TrimSpace(arguments)
	if !strings.HasPrefix(trimmed, "{") || !json.Valid([]byte(trimmed)) {
		return emptyInput
	}
	return json.RawMessage(trimmed)
}

// placeBreakpoints puts the cache plan's cache_control markers in place: the system
// breakpoint on the last system block (or on the last tool when there is no system
// prompt), one on the last content block of each wire message that a planned
// message ended up in (two planned messages in one wire message share a marker),
// and the request-level marker of automatic caching.
func placeBreakpoints(wire *wireRequest, wireOf []int, plan providers.CachePlan) error {
	marks, err := checkedMarks(len(wire.System) > 0 || len(wire.Tools) > 0,
		len(wire.Messages), len(wireOf), func(i int) int { return wireOf[i] }, plan)
	if err != nil {
		return err
	}
	for _, m := range marks {
		cc := m.control()
		switch {
		case m.pos == systemPos && len(wire.System) > 0:
			wire.System[len(wire.System)-1].CacheControl = cc
		case m.pos == systemPos:
			wire.Tools[len(wire.Tools)-1].CacheControl = cc
		case m.pos == len(wire.Messages):
			wire.CacheControl = cc
		default:
			content := wire.Messages[m.pos].Content
			content[len(content)-1].CacheControl = cc
		}
	}
	return nil
}

// systemPos is the prompt position of the system breakpoint, before every message.
const systemPos = -1

// mark is one breakpoint: its position in prompt order (systemPos, the index of a
// wire message, or len(wire.Messages) for the automatic one) and its TTL.
type mark struct {
	pos int
	ttl string // "5m" or "1h"
}

// control is the cache_control marker of m.
func (m mark) control() *cacheControl {
	cc := &cacheControl{Type: "ephemeral"}
	if m.ttl == "1h" {
		cc.TTL = "1h"
	}
	return cc
}

// checkedMarks is planMarks checked against the API's rules: at most
// maxBreakpoints, and no 1-hour one after a 5-minute one.
func checkedMarks(prefix bool, nWire, nMsgs int, wireOf func(i int) int,
	plan providers.CachePlan) ([]mark, error) {
	marks, err := planMarks(prefix, nWire, nMsgs, wireOf, plan)
	if err != nil {
		return nil, err
	}
	if len(marks) > maxBreakpoints {
		return nil, fmt.Errorf("%w: the cache plan places %d", ErrTooManyBreakpoints,
			len(marks))
	}
	if err := checkTTLOrder(marks); err != nil {
		return nil, err
	}
	return marks, nil
}

// planMarks lists the plan's breakpoints in prompt order, one per position, for
// a request of nMsgs neutral messages in nWire wire messages, with a system
// prompt or tools when prefix is true; wireOf(i) is the wire message of neutral
// message i.
func planMarks(prefix bool, nWire, nMsgs int, wireOf func(i int) int,
	plan providers.CachePlan) ([]mark, error) {
	// The TTLs are checked even where they place nothing: a typo should not wait
	// for the first request that uses it.
	defaultTTL, err := cacheTTL("", plan.TTL)
	if err != nil {
		return nil, err
	}
	systemTTL, err := cacheTTL(plan.SystemTTL, defaultTTL)
	if err != nil {
		return nil, err
	}

	var marks []mark
	if plan.System && prefix {
		marks = append(marks, mark{pos: systemPos, ttl: systemTTL})
	}
	for _, i := range plan.Messages {
		if i < 0 || i >= nMsgs {
			return nil, fmt.Errorf("%w: cache plan names message %d of %d",
				ErrInvalidRequest, i, nMsgs)
		}
		ttl, err := cacheTTL(plan.MessageTTL[i], plan.TTL)
		if err != nil {
			return nil, err
		}
		marks = append(marks, mark{pos: wireOf(i), ttl: ttl})
	}
	if plan.Auto {
		marks = append(marks, mark{pos: nWire, ttl: defaultTTL})
	}
	slices.SortStableFunc(marks, func(a, b mark) int { return cmp.Compare(a.pos, b.pos) })

	out := marks[:0]
	for _, m := range marks {
		if n := len(out); n > 0 && out[n-1].pos == m.pos {
			if out[n-1].ttl != m.ttl {
				return nil, fmt.Errorf("%w: breakpoint on wire message %d has ttls %s and %s",
					ErrInvalidRequest, m.pos, out[n-1].ttl, m.ttl)
			}
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// cacheTTL is ttl, or fallback when ttl is empty, as "5m" or "1h".
func cacheTTL(ttl, fallback string) (string, error) {
	if ttl == "" {
		ttl = fallback
	}
	switch ttl {
	case "", "5m":
		return "5m", nil
	case "1h":
		return "1h", nil
	}
	return "", fmt.Errorf("%w: unknown cache ttl %q", ErrInvalidRequest, ttl)
}

// checkTTLOrder enforces the API's rule that a breakpoint with a longer TTL never
// comes after one with a shorter TTL in prompt order.
func checkTTLOrder(marks []mark) error {
	seen5m := false
	for _, m := range marks {
		switch {
		case m.ttl == "5m":
			seen5m = true
		case seen5m:
			return fmt.Errorf("%w: a 1h cache breakpoint after a 5m one", ErrInvalidRequest)
		}
	}
	return nil
}

// encode serializes without HTML escaping, so text reaches the model as written.
func encode(wire *wireRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// newEncoder is the encoder of every body: no HTML escaping.
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
