package session

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stated-dev/stated/providers"
)

// Session is a live session: its log in memory, the answer in flight and the
// subscribers that hear about both. All methods are safe for concurrent use.
//
// Turns of one session run one at a time: while an answer is produced, new turns
// are refused with ErrBusy rather than queued, so a client always knows which
// answer belongs to which turn.
type Session struct {
	id       string
	tenant   string
	epoch    uint64
	settings Settings
	mgr      *Manager
	// settingsTokens is the local count of system and tools, computed once.
	settingsTokens int
	// prefix is the digest of the model, tools and system: the prefix the session
	// shares with the other sessions of its preset.
	prefix string

	// mu guards everything below. It is held across the durable append of a turn,
	// which is what serializes a session's writes.
	mu       sync.Mutex
	events   []Event
	turnIDs  map[string]uint64  // client turn ID -> seq of its event
	pending  map[string]bool    // tool call IDs of the last answer with no result yet
	running  bool               // an answer is being produced
	partial  *Partial           // the answer in flight, nil when none
	stop     context.CancelFunc // cancels the answer in flight, nil when none
	stopped  bool               // the client cancelled the answer in flight
	subs     map[Subscriber]struct{}
	lastUsed time.Time
	dropped  bool // this node no longer owns the session (owner.go)

	// The overlap of a turn's durable append with its answer's start (overlap.go).
	staging bool // a turn is staged: an admission refuses without storing anything
	// abandoned is the prompt sent for the answer in flight when its turn was not
	// stored; nil when none.
	abandoned *prompt
	// durableAt is when the last turn whose answer started before its durable
	// append was made durable; deltas of that answer read earlier waited for it.
	durableAt time.Time

	// The budget's and the runaway guard's state (budget.go, guard.go).
	admission *admission // the budget's decision for the answer in flight
	guard     guardState

	// The savings engine's state (rollup.go, cacheplan_session.go).
	rolling    bool             // a rollup's summary is being written
	rolled     chan struct{}    // closed when that rollup ends
	ready      *readyCheckpoint // a finished rollup waiting for the answer in flight
	lastPrompt *prompt          // the prompt of the last request sent
	gaps       gapStats         // gaps between this session's requests
	cache      *layoutCache     // what layouts of this session compute once
}

// Info describes a session.
type Info struct {
	ID       string
	Tenant   string
	Epoch    uint64
	LastSeq  uint64
	Settings Settings
}

// Input is a turn submitted by a client.
type Input struct {
	Kind       Kind   // KindUser or KindToolResult
	TurnID     string // the client's ID for the turn; required, for de-duplication
	Text       string // the user's text, or the tool's result
	ToolCallID string // KindToolResult: the call this answers
	IsError    bool   // KindToolResult: the tool failed
	// ValueUSD and Priority are what a user turn declares it is worth; see
	// CostPolicy. Zero and empty declare nothing.
	ValueUSD float64
	Priority string
	// Received is when the frame carrying the turn arrived; the answer's timing is
	// measured from it. Zero means now.
	Received time.Time
	// Pin keeps the turn verbatim in every prompt, whatever a rollup folds.
	Pin bool
}

// Info returns the session's identity and position.
func (s *Session) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Info{ID: s.id, Tenant: s.tenant, Epoch: s.epoch, LastSeq: s.lastSeqLocked(),
		Settings: s.settings}
}

// ID returns the session's ID.
func (s *Session) ID() string { return s.id }

// Submit validates a turn, appends it durably, tells the subscribers (sub, the
// submitter, gets a NoteAck; the others a NoteEvent) and, when the turn completes
// what the model waits for, starts the answer. It returns the stored event.
//
// The answer starts while the turn is being made durable, so its request may
// reach the provider before the turn is stored; nothing of the answer reaches a
// subscriber before the ack. When the append fails, nothing is acknowledged, the
// answer is cancelled at once and never stored, and what the provider reports it
// cost is booked (finops.PurposeUnstored). When the process stops after the
// provider call started and before the turn was durable, the turn was never
// acknowledged: the client sends it again and it is answered once then; the
// call of the lost attempt is not booked.
//
// A turn ID seen before is acknowledged again with its original event and not run
// twice; reusing it for a different turn yields ErrTurnIDConflict. Errors:
// ErrInvalid, ErrEmptyTurn, ErrBusy, ErrUnknownToolCall, ErrToolResultsPending,
// ErrTurnIDConflict, ErrClosed, or a storage error (nothing was acknowledged).
func (s *Session) Submit(ctx context.Context, sub Subscriber, in Input) (*Event, error) {
	if err := s.mgr.checkInput(&in); err != nil {
		return nil, err
	}
	if err := checkTurnValue(&in); err != nil {
		return nil, err
	}
	if in.Received.IsZero() {
		in.Received = time.Now()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if seq, ok := s.turnIDs[in.TurnID]; ok {
		return s.ackDuplicateLocked(sub, seq, &in)
	}
	if err := s.admitLocked(&in); err != nil {
		return nil, err
	}
	tokens, err := s.admitTokensLocked(&in)
	if err != nil {
		return nil, err
	}

	e := Event{
		Kind: in.Kind, Time: s.mgr.now().UTC(), TurnID: in.TurnID, Text: in.Text,
		ToolCallID: in.ToolCallID, IsError: in.IsError, Pinned: in.Pin,
		ValueUSD: in.ValueUSD, Priority: in.Priority, Tokens: tokens, // counted once
	}
	answer := len(s.pending) == 0 || len(s.pending) == 1 && s.pending[in.ToolCallID]
	stored, late, err := s.appendTurnLocked(ctx, e, answer, in.Received)
	if err != nil {
		return nil, err
	}
	s.turnIDs[in.TurnID] = stored.Seq
	s.mgr.turns.Add(1)
	delete(s.pending, in.ToolCallID)
	s.publishLocked(sub, stored)

	if late {
		// A refusal of the budget or the runaway guard comes after the ack: the
		// turn is stored, its answer is not started.
		if err := s.startAnswerLocked(in.Received); err != nil {
			return stored, err
		}
	}
	return stored, nil
}

// admitLocked checks that the session can take the turn now. s.mu must be held.
func (s *Session) admitLocked(in *Input) error {
	if s.mgr.closing() {
		return ErrClosed
	}
	if s.running {
		return ErrBusy
	}
	if s.guard.paused != nil {
		return fmt.Errorf("%w: resume it first", ErrPaused)
	}
	switch in.Kind {
	case KindUser:
		if len(s.pending) > 0 {
			return fmt.Errorf("%w: %d tool call(s) wait for results", ErrToolResultsPending,
				len(s.pending))
		}
	case KindToolResult:
		if !s.pending[in.ToolCallID] {
			return fmt.Errorf("%w: %q", ErrUnknownToolCall, in.ToolCallID)
		}
	}
	return nil
}

// ackDuplicateLocked acknowledges a turn whose ID was seen before. s.mu must be
// held.
func (s *Session) ackDuplicateLocked(sub Subscriber, seq uint64, in *Input) (*Event, error) {
	e := &s.events[seq-1]
	if e.Kind != in.Kind || e.Text != in.Text || e.ToolCallID != in.ToolCallID {
		return nil, fmt.Errorf("%w: %q", ErrTurnIDConflict, in.TurnID)
	}
	if sub != nil {
		sub.Deliver(Note{Kind: NoteAck, Event: e, Duplicate: true})
	}
	return e, nil
}

// Retry starts a new answer to the last turn when its answer failed or was cut.
// It returns ErrBusy while an answer runs, ErrNothingToAnswer when the last turn
// has a complete answer or tool calls wait for results.
func (s *Session) Retry(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mgr.closing():
		return ErrClosed
	case s.running:
		return ErrBusy
	case len(s.pending) > 0 || !s.needsAnswerLocked(true):
		return ErrNothingToAnswer
	}
	return s.startAnswerLocked(time.Now())
}

// needsAnswerLocked reports whether the log ends with a turn the model has not
// answered: a user turn or tool result, or (with failedToo) an answer that failed
// or was cut. s.mu must be held.
func (s *Session) needsAnswerLocked(failedToo bool) bool {
	i := len(s.events) - 1
	for i >= 0 && (s.events[i].Kind == KindRollup || s.events[i].Kind == KindPin ||
		s.events[i].Kind == KindPaused || s.events[i].Kind == KindResumed) {
		i-- // checkpoints, pins, pauses and resumes are not turns
	}
	if i < 0 {
		return false
	}
	last := &s.events[i]
	if last.Kind != KindAssistant {
		return true
	}
	return failedToo && last.Status != providers.StatusComplete
}

// appendLocked numbers e, stores it durably and adds it to the in-memory log. s.mu
// must be held. The returned pointer stays valid until the log is evicted.
func (s *Session) appendLocked(ctx context.Context, e Event) (*Event, error) {
	st, err := s.stageLocked(e)
	if err != nil {
		return nil, err
	}
	return s.commitLocked(ctx, st)
}

// publishLocked tells every subscriber about a new durable event; from, if not
// nil, is told with an ack instead. s.mu must be held.
func (s *Session) publishLocked(from Subscriber, e *Event) {
	for sub := range s.subs {
		if sub == from {
			sub.Deliver(Note{Kind: NoteAck, Event: e})
			continue
		}
		sub.Deliver(Note{Kind: NoteEvent, Event: e})
	}
	if from != nil {
		if _, ok := s.subs[from]; !ok {
			from.Deliver(Note{Kind: NoteAck, Event: e})
		}
	}
}

func (s *Session) lastSeqLocked() uint64 {
	return uint64(len(s.events))
}

// History returns a copy of the events with seq greater than after.
func (s *Session) History(after uint64) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after >= uint64(len(s.events)) {
		return nil
	}
	return append([]Event(nil), s.events[after:]...)
}

// checkInput validates a turn against the limits before any lock is taken.
func (m *Manager) checkInput(in *Input) error {
	l := m.cfg.Limits
	switch {
	case in.Kind != KindUser && in.Kind != KindToolResult:
		return fmt.Errorf("%w: turn kind %q", ErrInvalid, in.Kind)
	case in.TurnID == "" || len(in.TurnID) > l.MaxIDBytes:
		return fmt.Errorf("%w: turn_id must have 1 to %d bytes", ErrInvalid, l.MaxIDBytes)
	case len(in.Text) > l.MaxTurnBytes:
		return fmt.Errorf("%w: text over %d bytes", ErrInvalid, l.MaxTurnBytes)
	case !utf8.ValidString(in.Text):
		return fmt.Errorf("%w: text is not valid UTF-8", ErrInvalid)
	case in.Kind == KindUser && strings.TrimSpace(in.Text) == "":
		return ErrEmptyTurn
	case in.Kind == KindToolResult && (in.ToolCallID == "" || len(in.ToolCallID) > l.MaxIDBytes):
		return fmt.Errorf("%w: tool_call_id must have 1 to %d bytes", ErrInvalid, l.MaxIDBytes)
	case in.Kind == KindUser && in.ToolCallID != "":
		return fmt.Errorf("%w: a user turn has no tool_call_id", ErrInvalid)
	}
	return nil
}
