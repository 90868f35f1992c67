// Package providers holds the provider-neutral request and stream types that the
// session layer speaks, the adapters that translate them to each provider's wire
// format, token counting, and the provider simulator.
//
// Everything a session sends to a model goes through Provider. Adapters live in
// subpackages (anthropic, openai) and talk HTTP, so the code that is tested against
// the simulator is the code that talks to real providers.
package providers

import (
	"context"
	"encoding/json"
	"time"
)

// Provider sends one request to a model and streams the answer.
//
// Complete calls onDelta, from the calling goroutine, for every piece of the answer
// in the order the provider produced it, and returns the whole answer once the
// stream has ended. If the call fails after the answer has started (a cut stream, an
// error event, a cancelled ctx), Complete returns the partial Response it assembled
// so far, with Status StatusIncomplete and the usage seen so far, together with the
// error. If it fails before anything arrived, the Response is nil.
//
// Errors are *Error values (matched with errors.As) carrying the HTTP status and
// whether a retry can help; a cancelled ctx yields ctx.Err() wrapped.
type Provider interface {
	// Name is the adapter's wire format: "anthropic", "openai" or
	// "openai-responses"; decorators and routers name what they wrap.
	Name() string
	Complete(ctx context.Context, req *Request, onDelta func(Delta)) (*Response, error)
}

// Role is who speaks a Message.
type Role string

// The roles of a conversation. A RoleTool message answers one tool call of the
// assistant message before it. Adapters translate: Anthropic folds consecutive tool
// messages into one user message of tool_result blocks; OpenAI sends them as "tool"
// messages.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Request is one call to a model, in provider-neutral form. The order of its
// fields is the order of the prompt prefix: tools, system, messages.
type Request struct {
	Model     string
	MaxTokens int
	Tools     []Tool
	System    string
	Messages  []Message
	Cache     CachePlan
	// Fallback lists the models to try, in order, when Model fails before anything
	// streamed with an error a retry could help (see Fallback). Adapters ignore it.
	Fallback []string
	// Encoded, when not nil, keeps the bytes the adapter encodes for Messages
	// between the requests of one conversation, so that only new or changed
	// messages are encoded again; the body is the same either way. Nil encodes
	// every message.
	Encoded *EncodedCache
}

// Tool is a function the model may call. InputSchema is a JSON Schema object and
// is sent byte for byte as given, so a stable schema yields a stable prefix.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// Message is one turn of the conversation.
//
// A user message has Text. An assistant message has Text, ToolCalls or both. A tool
// message has ToolCallID and Text (the result) and IsError.
type Message struct {
	Role       Role
	Text       string
	ToolCalls  []ToolCall
	ToolCallID string
	IsError    bool
	// Key names the message within its conversation for an EncodedCache: a
	// message with the same Key and the same content as one of an earlier request
	// reuses its bytes. Zero: never reused.
	Key uint64
}

// ToolCall is a call the model made. Arguments is the JSON text of the arguments as
// the model produced it.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// CachePlan says where the provider should cache the prompt prefix.
//
// Anthropic: System puts a cache_control breakpoint on the last system block (which
// caches tools and system together); each index in Messages puts one on the last
// content block of that message; Auto sends the request-level cache_control, which
// puts one more on the last cacheable block. Each breakpoint has the TTL of
// MessageTTL or SystemTTL when set there, else TTL. The API takes at most four
// breakpoints, Auto's included, and wants every 1-hour breakpoint before every
// 5-minute one in prompt order (tools, system, messages); the adapter refuses a
// plan that breaks either rule. The zero value asks for no caching.
//
// OpenAI: Key is sent as prompt_cache_key and Retention as prompt_cache_retention;
// breakpoints and TTLs are not sent.
type CachePlan struct {
	System   bool
	Messages []int
	TTL      string // "5m" (default when empty) or "1h"
	Key      string
	// SystemTTL, when not empty, is the TTL of the system breakpoint.
	SystemTTL string
	// MessageTTL, when it holds an index of Messages, is the TTL of that
	// message's breakpoint. Nil: every message breakpoint has TTL.
	MessageTTL map[int]string
	// Auto asks for Anthropic's automatic caching with TTL: a breakpoint on the
	// last cacheable block, which moves forward as the conversation grows.
	Auto bool
	// Retention is OpenAI's prompt_cache_retention: "" (not sent: the provider's
	// default), "in_memory" or "24h".
	Retention string
}

// DeltaKind says what a Delta carries.
type DeltaKind uint8

const (
	// DeltaText carries Text, a piece of the answer's text.
	DeltaText DeltaKind = iota + 1
	// DeltaToolCall carries a piece of tool call number Index: ID and Name are set
	// on the first piece of each call, Arguments holds the next fragment of the
	// arguments' JSON text.
	DeltaToolCall
)

// Delta is one piece of a streamed answer.
type Delta struct {
	Kind      DeltaKind
	Text      string
	Index     int
	ID        string
	Name      string
	Arguments string
	// At is when the upstream bytes that completed the delta were read from the
	// provider's response body (the last body Read that returned data); zero when
	// unknown.
	At time.Time
}

// Status is how an answer ended.
type Status string

const (
	StatusComplete   Status = "complete"
	StatusIncomplete Status = "incomplete"
	StatusAborted    Status = "aborted"
)

// StopReason is why the model stopped, normalized across providers.
type StopReason string

const (
	StopEnd       StopReason = "end_turn"
	StopMaxTokens StopReason = "max_tokens"
	StopToolUse   StopReason = "tool_use"
	// StopRefusal: the provider's safety layer stopped the answer (Anthropic's
	// refusal, OpenAI's content_filter).
	StopRefusal StopReason = "refusal"
	// StopPause: Anthropic paused a long-running turn (pause_turn); sending the
	// conversation back as it is lets the model continue.
	StopPause StopReason = "pause_turn"
	StopOther StopReason = "other"
)

// Response is a whole answer.
type Response struct {
	Model      string // the model that answered, as the provider reported it
	Text       string
	ToolCalls  []ToolCall
	StopReason StopReason
	Status     Status
	Usage      Usage
	// UsageReported is false when the stream ended before the provider reported
	// usage; Usage then holds what was seen, and the cost is an estimate.
	UsageReported bool
}

// Usage is token usage in four disjoint categories: every prompt token is counted
// in exactly one of InputTokens, CacheWrite5mTokens, CacheWrite1hTokens and
// CacheReadTokens. The OpenAI adapter converts (prompt_tokens includes
// cached_tokens there); Anthropic reports them disjoint already.
type Usage struct {
	InputTokens        int `json:"input_tokens"`
	CacheWrite5mTokens int `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int `json:"cache_write_1h_tokens"`
	CacheReadTokens    int `json:"cache_read_tokens"`
	OutputTokens       int `json:"output_tokens"`
}

// PromptTokens is all prompt tokens, whatever their cache state.
func (u Usage) PromptTokens() int {
	return u.InputTokens + u.CacheWrite5mTokens + u.CacheWrite1hTokens + u.CacheReadTokens
}

// CacheWriteTokens is the prompt tokens written to the cache, at either TTL.
func (u Usage) CacheWriteTokens() int {
	return u.CacheWrite5mTokens + u.CacheWrite1hTokens
}

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:        u.InputTokens + v.InputTokens,
		CacheWrite5mTokens: u.CacheWrite5mTokens + v.CacheWrite5mTokens,
		CacheWrite1hTokens: u.CacheWrite1hTokens + v.CacheWrite1hTokens,
		CacheReadTokens:    u.CacheReadTokens + v.CacheReadTokens,
		OutputTokens:       u.OutputTokens + v.OutputTokens,
	}
}
