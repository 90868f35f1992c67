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
	// TypePin pins the turn or answer at Seq; TypeHistory reads the log;
	// TypePreset registers a preset (the server answers with a preset frame too).
	TypePin     = "pin"
	TypeHistory = "history"
	TypePreset  = "preset"
	// TypeResumeTurns lifts a pause of the runaway guard.
	TypeResumeTurns = "resume_turns"
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
	// FallbackModels are tried in order when the model fails before its answer
	// starts; empty means the server's default list.
	FallbackModels []string `json:"fallback_models,omitempty"`
	// Preset opens the session with a registered preset's system, tools and model
	// policy (PresetVersion 0: the latest); preset also names the preset a
	// preset frame registers.
	Preset        string         `json:"preset,omitempty"`
	PresetVersion int            `json:"preset_version,omitempty"`
	Context       *ContextPolicy `json:"context,omitempty"`
	// CostPolicy sets the session's own budget limits and model policy.
	CostPolicy *CostPolicy `json:"cost_policy,omitempty"`

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
	// Pin keeps a turn verbatim in every prompt.
	Pin bool `json:"pin,omitempty"`
	// ValueUSD and Priority ("low", "normal", "high") declare what a turn is
	// worth; the session's cost policy may pick its model by them.
	ValueUSD float64 `json:"value_usd,omitempty"`
	Priority string  `json:"priority,omitempty"`

	// pin: the seq to pin
	Seq uint64 `json:"seq,omitempty"`

	// history: the events after AfterSeq, at most Limit of them
	AfterSeq uint64 `json:"after_seq,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

// ContextPolicy says how a session keeps its prompt small; zero fields take the
// preset's or the server's values, -1 turns a mechanism off.
type ContextPolicy struct {
	RollupHighTokens int    `json:"rollup_high_tokens,omitempty"`
	RollupLowTokens  int    `json:"rollup_low_tokens,omitempty"`
	SummaryModel     string `json:"summary_model,omitempty"`
	RationAfterTurns int    `json:"ration_after_turns,omitempty"`
	RationMinTokens  int    `json:"ration_min_tokens,omitempty"`
	DedupMinTokens   int    `json:"dedup_min_tokens,omitempty"`
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
	Pinned     bool       `json:"pinned,omitempty"`
	// Target is the seq a "pin" event pins.
	Target uint64 `json:"target,omitempty"`
	// Rollup is the checkpoint of a "rollup" event, whose Text is the summary.
	Rollup *Rollup `json:"rollup,omitempty"`
	// OmittedTokens counts, per lever ("rollup", "rationing"), the tokens of the
	// log the answer's request left out.
	OmittedTokens map[string]int `json:"omitted_tokens,omitempty"`
	// ValueUSD and Priority are what a user turn declared it is worth.
	ValueUSD float64 `json:"value_usd,omitempty"`
	Priority string  `json:"priority,omitempty"`
	// Guard is what a "paused" or "resumed" event says.
	Guard *GuardNote `json:"guard,omitempty"`

	Model         string  `json:"model,omitempty"`
	Status        string  `json:"status,omitempty"` // complete, incomplete, failed
	StopReason    string  `json:"stop_reason,omitempty"`
	Usage         *Usage  `json:"usage,omitempty"`
	UsageEstimate bool    `json:"usage_estimate,omitempty"`
	CostUSD       float64 `json:"cost_usd,omitempty"`
	// NaiveCostUSD is what a stateless client would have paid for the answer.
	NaiveCostUSD float64 `json:"naive_cost_usd,omitempty"`
	// Budget says how a budget or the turn's value changed the answer.
	Budget    *BudgetNote `json:"budget,omitempty"`
	ErrorCode string      `json:"error_code,omitempty"`
	Timing    *Timing     `json:"timing,omitempty"`
}

// Rollup is a checkpoint of the prompt: a summary stands in for the events up to
// Through, and the tool results in Elided are shown as stubs. Nothing is deleted
// from the log.
type Rollup struct {
	Through uint64        `json:"through"`
	Elided  []uint64      `json:"elided,omitempty"`
	Reason  string        `json:"reason"` // watermark, ration, overflow
	Figures RollupFigures `json:"figures"`
}

// RollupFigures are the numbers a rollup was decided on (local token counts, USD).
type RollupFigures struct {
	PromptTokens    int     `json:"prompt_tokens"`
	NewPromptTokens int     `json:"new_prompt_tokens"`
	FoldedTokens    int     `json:"folded_tokens"`
	ElidedTokens    int     `json:"elided_tokens"`
	RewriteTokens   int     `json:"rewrite_tokens"`
	HorizonTurns    int     `json:"horizon_turns"`
	SavingsUSD      float64 `json:"savings_usd"`
	SummaryCostUSD  float64 `json:"summary_cost_usd"`
	RewriteCostUSD  float64 `json:"rewrite_cost_usd"`
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

	// session, preset: the preset and version the session was opened by, or
	// registered
	Preset        string `json:"preset,omitempty"`
	PresetVersion int    `json:"preset_version,omitempty"`
	Digest        string `json:"digest,omitempty"` // preset

	// history: the events asked for; More when the log has more after them
	Events []*Event `json:"events,omitempty"`
	More   bool     `json:"more,omitempty"`

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
