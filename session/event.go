package session

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
)

// Kind names what an Event records.
type Kind string

// The kinds of events in a session's log.
const (
	// KindUser is a user turn: Text, with the client's TurnID.
	KindUser Kind = "user"
	// KindToolResult answers one tool call of the last assistant turn: ToolCallID,
	// Text (the result) and IsError, with the client's TurnID.
	KindToolResult Kind = "tool_result"
	// KindAssistant is an answer of the model: Text and ToolCalls as far as they
	// got, Status, StopReason, Model, Usage and cost. An answer that failed before
	// the provider said anything has Status "failed" and an ErrorCode.
	KindAssistant Kind = "assistant"
	// KindRollup is a checkpoint of the prompt (see Checkpoint): Text is the summary
	// of every event up to Rollup.Through, Tokens its count, and Model, Usage and
	// CostUSD those of the call that wrote it. The events it covers stay in the log.
	KindRollup Kind = "rollup"
	// KindPin pins the turn or answer at seq Target: it stays verbatim in every
	// prompt, whatever a rollup folds.
	KindPin Kind = "pin"
	// KindPaused is a pause of the runaway guard (Guard says why): turns are
	// refused until a KindResumed event.
	KindPaused Kind = "paused"
	// KindResumed lifts the pause before it; Guard.By says who resumed.
	KindResumed Kind = "resumed"
)

// StatusFailed marks an answer that produced nothing: the provider refused or could
// not be reached. Such an event keeps the log honest about the attempt; the layout
// leaves it out of later requests.
const StatusFailed providers.Status = "failed"

// Event is one entry of a session's log. Events are immutable once appended.
//
// Tokens is the local token count of the event's content, computed once when the
// event is appended and never again.
type Event struct {
	Seq  uint64    `json:"seq"`
	Kind Kind      `json:"kind"`
	Time time.Time `json:"time"`

	TurnID     string               `json:"turn_id,omitempty"`
	Text       string               `json:"text,omitempty"`
	ToolCalls  []providers.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string               `json:"tool_call_id,omitempty"`
	IsError    bool                 `json:"is_error,omitempty"`
	Tokens     int                  `json:"tokens"`
	// Pinned marks a turn submitted pinned: it stays verbatim in every prompt.
	Pinned bool `json:"pinned,omitempty"`
	// Target is the seq a KindPin event pins.
	Target uint64 `json:"target,omitempty"`
	// Rollup is the checkpoint of a KindRollup event.
	Rollup *Checkpoint `json:"rollup,omitempty"`
	// Omitted counts, per lever, the tokens of the log the request of an answer
	// left out (rollup: folded turns less their summary; rationing: left-out and
	// repeated tool output less the stubs shown instead).
	Omitted map[finops.Lever]int `json:"omitted_tokens,omitempty"`
	// ValueUSD and Priority are what a user turn declared it is worth (see
	// CostPolicy).
	ValueUSD float64 `json:"value_usd,omitempty"`
	Priority string  `json:"priority,omitempty"`
	// Guard is what a KindPaused or KindResumed event says.
	Guard *GuardNote `json:"guard,omitempty"`

	// Answer fields, set on KindAssistant only.
	Model         string               `json:"model,omitempty"`
	Status        providers.Status     `json:"status,omitempty"`
	StopReason    providers.StopReason `json:"stop_reason,omitempty"`
	Usage         *providers.Usage     `json:"usage,omitempty"`
	UsageEstimate bool                 `json:"usage_estimate,omitempty"`
	CostUSD       float64              `json:"cost_usd,omitempty"`
	// NaiveCostUSD is what a stateless client would have paid for the same answer:
	// every prompt token, and those the request left out, as uncached input.
	NaiveCostUSD float64 `json:"naive_cost_usd,omitempty"`
	// Budget says how a budget or the turn's value changed the answer's model or
	// length; nil when nothing did.
	Budget    *BudgetNote `json:"budget,omitempty"`
	ErrorCode string      `json:"error_code,omitempty"`
	Timing    *Timing     `json:"timing,omitempty"`
}

// Timing is what the server measured of an answer, in milliseconds.
type Timing struct {
	// AddedMS is the time the server added before the provider call: from the
	// frame that completed the turn arriving to the request being sent upstream.
	AddedMS float64 `json:"added_ms"`
	// FirstTokenMS is from the request being sent to the first delta relayed.
	FirstTokenMS float64 `json:"first_token_ms"`
	// TotalMS is from the request being sent to the answer being stored.
	TotalMS float64 `json:"total_ms"`
}

// answered reports whether the event carries content a provider can be shown:
// failed and empty answers are left out of the layout.
func (e *Event) answered() bool {
	return e.Kind == KindAssistant && (e.Text != "" || len(e.completeCalls()) > 0)
}

// completeCalls returns the tool calls a later tool result may answer: all of them
// for a complete answer, none for a cut one, whose last call may be half-written.
func (e *Event) completeCalls() []providers.ToolCall {
	if e.Status != providers.StatusComplete {
		return nil
	}
	return e.ToolCalls
}

func encodeEvent(e *Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("session: encode event %d: %w", e.Seq, err)
	}
	return b, nil
}

func decodeEvent(seq uint64, data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("session: decode event %d: %w", seq, err)
	}
	if e.Seq != seq {
		return Event{}, fmt.Errorf("session: event stored at seq %d says seq %d", seq, e.Seq)
	}
	return e, nil
}

// countTokens is the local count of what an event puts into a prompt.
func countTokens(e *Event) int {
	n := providers.CountTokens(e.Text)
	for _, c := range e.ToolCalls {
		n += providers.CountTokens(c.Name) + providers.CountTokens(c.Arguments)
	}
	return n
}
