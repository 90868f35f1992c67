package session

import "errors"

// Errors returned to callers of the session package. Each maps to one error code of
// the wire protocol (docs/protocol.md); the transport does the mapping.
var (
	// ErrNotFound means no session has that ID for this tenant. A session of another
	// tenant yields the same error, so its existence is not revealed.
	ErrNotFound = errors.New("session: not found")
	// ErrBusy means an answer is being produced; the turn was not accepted. Retry
	// after the answer event arrives.
	ErrBusy = errors.New("session: an answer is in progress")
	// ErrEmptyTurn means a user turn had no text.
	ErrEmptyTurn = errors.New("session: empty turn")
	// ErrUnknownToolCall means a tool result names no tool call that is waiting for
	// one.
	ErrUnknownToolCall = errors.New("session: no pending tool call with that id")
	// ErrToolResultsPending means a user turn came while tool calls of the last
	// answer still wait for their results.
	ErrToolResultsPending = errors.New("session: tool results pending")
	// ErrNothingToAnswer means a retry was asked for but the last turn has an answer.
	ErrNothingToAnswer = errors.New("session: nothing to answer")
	// ErrInvalid means a turn or settings broke a limit or a rule; the wrapped
	// message says which.
	ErrInvalid = errors.New("session: invalid request")
	// ErrClosed means the manager is shutting down and takes no new work.
	ErrClosed = errors.New("session: shutting down")
	// ErrTurnIDConflict means a client turn ID was reused for a different turn.
	ErrTurnIDConflict = errors.New("session: turn id already used for another turn")
)
