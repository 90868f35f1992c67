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
	// ErrPaused means the runaway guard paused the session: no answer starts until
	// the client or an admin resumes it (Session.ResumeTurns). A refusal by a
	// budget is not a session error: it matches finops.ErrBudgetExceeded.
	ErrPaused = errors.New("session: paused by the runaway guard")
	// ErrContextOverflow means the prompt of the turn would not fit the model's
	// context window even with every turn that may be folded summarized; the turn
	// was not stored and nothing was spent.
	ErrContextOverflow = errors.New("session: the conversation does not fit the model's context")
	// ErrToolPairing means a laid-out request would have split a tool call from its
	// results: a bug of the layout, caught before the request was sent.
	ErrToolPairing = errors.New("session: tool calls and results do not pair up")
	// ErrPresetNotFound means no preset has that name (or version) for the tenant.
	ErrPresetNotFound = errors.New("session: preset not found")
	// ErrNotPinnable means a pin named a seq that is not a turn or answer of the log.
	ErrNotPinnable = errors.New("session: no turn or answer to pin at that seq")
	// ErrMoved means Extend expected the log to end at a seq it has moved past;
	// nothing was appended.
	ErrMoved = errors.New("session: the log has moved on")
	// ErrOwnedElsewhere means another node of the cluster owns the session; the
	// error is an *OwnedElsewhereError naming it. Forward to that node, or retry
	// once its ownership runs out.
	ErrOwnedElsewhere = errors.New("session: owned by another node")
	// ErrNotOwner means this node stopped serving the session because another node
	// took it over (or its log moved on without this node); nothing was stored.
	// Reconnect and resume: the session's owner serves it.
	ErrNotOwner = errors.New("session: this node no longer owns the session")
)
