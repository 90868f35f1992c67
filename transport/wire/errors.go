package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Error codes of error frames. docs/protocol.md says for each whether a retry can
// help; Retryable encodes the same table.
const (
	CodeBadFrame           = "bad_frame"
	CodeUnknownType        = "unknown_type"
	CodeNotAttached        = "not_attached"
	CodeSessionNotFound    = "session_not_found"
	CodeInvalid            = "invalid"
	CodeEmptyTurn          = "empty_turn"
	CodeBusy               = "busy"
	CodeUnknownToolCall    = "unknown_tool_call"
	CodeToolResultsPending = "tool_results_pending"
	CodeTurnIDConflict     = "turn_id_conflict"
	CodeNothingToAnswer    = "nothing_to_answer"
	CodeShuttingDown       = "shutting_down"
	CodeInternal           = "internal"
	// CodeContextOverflow: the turn cannot fit the model's context window even
	// with the conversation summarized; it was not stored.
	CodeContextOverflow = "context_overflow"
	// CodePresetNotFound: the open frame names a preset (or version) that does
	// not exist.
	CodePresetNotFound = "preset_not_found"
	// CodeNotPinnable: a pin names no turn or answer of the log.
	CodeNotPinnable = "not_pinnable"
	// CodeBudgetExceeded: a hard budget limit refused the answer before any
	// provider call; the turn is stored, its answer a failed event with this
	// error code. Retry once the window rolls over or the limit is raised.
	CodeBudgetExceeded = "budget_exceeded"
	// CodeSessionPaused: the runaway guard paused the session; no answer starts
	// until a resume_turns frame or an admin resumes it.
	CodeSessionPaused = "session_paused"
	// CodeOwnerUnavailable: another node of the cluster owns the session and did
	// not answer (it died, or it is shutting down); retry after a pause, and the
	// session is served again once its ownership moves.
	CodeOwnerUnavailable = "owner_unavailable"
)

var retryable = map[string]bool{
	CodeBusy:         true,
	CodeShuttingDown: true,
	CodeInternal:     true,
	// A cluster moves the session to a live node within the lease TTL.
	CodeOwnerUnavailable: true,
}

// Retryable reports whether the same frame may succeed if sent again later.
func Retryable(code string) bool { return retryable[code] }

// WebSocket close codes the server uses besides the standard ones.
const (
	// CloseSlowConsumer: the client did not read fast enough; resume to catch up.
	CloseSlowConsumer = 4000
	// CloseGoingAway (1001): the server is shutting down; reconnect and resume.
	CloseGoingAway = 1001
	// CloseTooBig (1009): a frame was larger than the server's read limit.
	CloseTooBig = 1009
	// CloseSessionMoved: in a cluster, this node stopped serving the session (it
	// lost ownership, or lost contact with the node that owns it); reconnect and
	// resume, to any node.
	CloseSessionMoved = 4001
)

// ErrBadFrame is returned by DecodeClientFrame for bytes that are not a client
// frame; the wrapped message says what is wrong.
var ErrBadFrame = errors.New("wire: bad frame")

// DecodeClientFrame parses one client frame. It rejects anything that is not a
// single JSON object with a string "type", unknown fields included, so that a
// misspelled field is an error rather than silently ignored. The type itself is
// not checked here: the server answers an unknown type with its own code.
func DecodeClientFrame(data []byte) (ClientFrame, error) {
	var f ClientFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return ClientFrame{}, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if dec.More() {
		return ClientFrame{}, fmt.Errorf("%w: data after the JSON object", ErrBadFrame)
	}
	if f.Type == "" {
		return ClientFrame{}, fmt.Errorf("%w: no type", ErrBadFrame)
	}
	return f, nil
}
