// Package wire defines the frames of the stated.v1 WebSocket protocol, shared by the
// server (package transport) and the Go client (package transport/client).
//
// docs/protocol.md is the contract; this package is its Go form. Every frame is one
// JSON object in one WebSocket text message, with a "type" field.
package wire

import "encoding/json"

// Subprotocol is the WebSocket subprotocol this package speaks.
const Subprotocol = "stated.v1"

// Frame types sent by clients.
const (
	TypeOpen       = "open"
	TypeResume     = "resume"
	TypeTurn       = "turn"
	TypeToolResult = "tool_result"
	TypeRetry      = "retry"
	TypeCancel     = "cancel"
	TypePing       = "ping"
)

// Frame types sent by the server.
const (
	TypeSession = "session"
	TypeAck     = "ack"
	TypeEvent   = "event"
	TypeDelta   = "delta"
	TypePartial = "partial"
	TypeError   = "error"
	TypePong    = "pong"
)

// ClientFrame is any frame a client sends; Type says which fields apply.
type ClientFrame struct {
	Type string `json:"type"`

	// open
	Model     string `json:"model,omitempty"`
	System    string `json:"system,omitempty"`
	Tools     []Tool `json:"tools,omitempty"`
	MaxTokens int    `json:"max_tokens,omitempty"`

	// resume
	SessionID string `json:"session_id,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	LastSeq   uint64 `json:"last_seq,omitempty"`

	// turn, tool_result
	TurnID     string `json:"turn_id,omitempty"`
	Text       string `json:"text,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	Content    string `json:"content,omitempty"`
	IsError    bool   `json:"is_error,omitempty"`
}

// Tool is a function the model may call.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// ToolCall is a call the model made; Arguments is JSON text.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Usage is the provider-reported token usage of an answer, in disjoint categories.
type Usage struct {
	InputTokens        int `json:"input_tokens"`
	CacheWrite5mTokens int `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int `json:"cache_write_1h_tokens"`
	CacheReadTokens    int `json:"cache_read_tokens"`
	OutputTokens       int `json:"output_tokens"`
}

// Timing is what the server measured of an answer, in milliseconds.
type Timing struct {
	AddedMS      float64 `json:"added_ms"`
	FirstTokenMS float64 `json:"first_token_ms"`
	TotalMS      float64 `json:"total_ms"`
}

// Event is a durable entry of a session's log, as the server sends it.
type Event struct {
	Seq        uint64     `json:"seq"`
	Kind       string     `json:"kind"` // "user", "tool_result", "assistant"
	Time       string     `json:"time"` // RFC 3339
	TurnID     string     `json:"turn_id,omitempty"`
	Text       string     `json:"text,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	IsError    bool       `json:"is_error,omitempty"`
	Tokens     int        `json:"tokens"`

	Model         string  `json:"model,omitempty"`
	Status        string  `json:"status,omitempty"` // complete, incomplete, failed
	StopReason    string  `json:"stop_reason,omitempty"`
	Usage         *Usage  `json:"usage,omitempty"`
	UsageEstimate bool    `json:"usage_estimate,omitempty"`
	CostUSD       float64 `json:"cost_usd,omitempty"`
	ErrorCode     string  `json:"error_code,omitempty"`
	Timing        *Timing `json:"timing,omitempty"`
}

// ServerFrame is any frame the server sends; Type says which fields apply.
type ServerFrame struct {
	Type string `json:"type"`
	// Seq is the log position the frame speaks of: the last durable seq (session),
	// the acknowledged turn (ack), the event (event), or the seq the answer in
	// flight will have (delta, partial).
	Seq uint64 `json:"seq,omitempty"`

	// session
	SessionID string `json:"session_id,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	Snapshot  bool   `json:"snapshot,omitempty"`
	Missed    int    `json:"missed,omitempty"`
	Model     string `json:"model,omitempty"`
	MaxTokens int    `json:"max_tokens,omitempty"`

	// ack
	TurnID    string `json:"turn_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`

	// event
	Event *Event `json:"event,omitempty"`

	// delta, partial
	Offset    int        `json:"offset,omitempty"`
	Text      string     `json:"text,omitempty"`
	ToolCall  *DeltaCall `json:"tool_call,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Retry   bool   `json:"retry,omitempty"`
}

// DeltaCall is a piece of a tool call in flight: ID and Name come with the first
// piece of each call, Arguments holds the next fragment of its JSON text, and
// Offset on the frame is where that fragment starts.
type DeltaCall struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}
