package session

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// AnySeq, passed to Extend as the expected last seq, appends wherever the log ends.
const AnySeq = ^uint64(0)

// maxItemCalls bounds the tool calls of one answer a client brings along.
const maxItemCalls = 128

// Item is an entry of a conversation that a client holds and brings into the log:
// a user turn, a tool result, or an answer the model gave earlier (history that a
// stateless client re-sends, or items added to a conversation).
type Item struct {
	Kind Kind
	// TurnID is the client's ID of a user turn or tool result, for de-duplication.
	TurnID     string
	Text       string
	ToolCalls  []providers.ToolCall // KindAssistant
	ToolCallID string               // KindToolResult
	IsError    bool                 // KindToolResult
}

// Extended says what Extend did.
type Extended struct {
	// LastSeq is the seq of the last item, durable.
	LastSeq uint64
	// Duplicate is set when every turn of the batch had been appended before, with
	// the same turn IDs and content: nothing was appended or started again, and
	// LastSeq is the seq of the last of them.
	Duplicate bool
	// Answering is set when an answer to the items was started; it will have seq
	// LastSeq+1.
	Answering bool
}

// Serves reports whether the manager's provider takes model. A provider that does
// not say which models it serves takes them all.
func (m *Manager) Serves(model string) bool {
	mc, ok := m.provider.(providers.ModelChecker)
	return !ok || mc.Serves(model)
}

// Normalize returns st as Open would store it: defaults filled in and tool schemas
// compacted, so that two requests for the same settings compare equal. Errors:
// ErrInvalid.
func (m *Manager) Normalize(st Settings) (Settings, error) {
	st.Tools = append([]providers.Tool(nil), st.Tools...)
	if err := m.normalizeSettings(&st); err != nil {
		return Settings{}, err
	}
	return st, nil
}

// OpenWith opens a session for tenant whose log starts with items, as Open followed
// by Extend(ctx, 0, items, answer) would, except that items Extend would refuse
// are refused before any session is created. Errors: those of Open and Extend.
func (m *Manager) OpenWith(ctx context.Context, tenant string, st Settings, items []Item,
	answer bool) (*Session, Extended, error) {
	if len(items) == 0 {
		return nil, Extended{}, fmt.Errorf("%w: no items to append", ErrInvalid)
	}
	for i := range items {
		if err := m.checkItem(&items[i]); err != nil {
			return nil, Extended{}, err
		}
	}
	probe := m.newSession(storage.Meta{}, st)
	probe.mu.Lock()
	_, pending, err := probe.planLocked(items)
	probe.mu.Unlock()
	if err == nil && answer {
		err = checkAnswerable(items[len(items)-1].Kind, pending)
	}
	if err != nil {
		return nil, Extended{}, err
	}

	s, err := m.Open(ctx, tenant, st)
	if err != nil {
		return nil, Extended{}, err
	}
	ext, err := s.Extend(ctx, 0, items, answer)
	if err != nil {
		return nil, Extended{}, err
	}
	return s, ext, nil
}

// Extend appends items to the log in one durable write: all of them or none, and
// only while the log's last turn (user turn, tool result or answer) has seq after
// (AnySeq: wherever the log ends). Subscribers hear of each as a NoteEvent.
//
// With answer set, the items must leave the model something to answer (the last
// is a user turn or a tool result) and no tool call without its result; the
// answer is then started as Submit starts it. Without, they are only stored.
//
// A batch whose turn IDs were all seen before, with the same content, is a
// duplicate: nothing happens and Extended.Duplicate is set. Errors: ErrMoved,
// ErrBusy, ErrInvalid, ErrEmptyTurn, ErrUnknownToolCall, ErrToolResultsPending,
// ErrTurnIDConflict, ErrClosed, or a storage error (nothing was appended).
func (s *Session) Extend(ctx context.Context, after uint64, items []Item,
	answer bool) (Extended, error) {
	if len(items) == 0 {
		return Extended{}, fmt.Errorf("%w: no items to append", ErrInvalid)
	}
	for i := range items {
		if err := s.mgr.checkItem(&items[i]); err != nil {
			return Extended{}, err
		}
	}
	received := time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if seq, dup, err := s.duplicateLocked(items); dup || err != nil {
		return Extended{LastSeq: seq, Duplicate: dup}, err
	}
	switch {
	case s.mgr.closing():
		return Extended{}, ErrClosed
	case s.running:
		return Extended{}, ErrBusy
	case after != AnySeq && after != s.lastTurnSeqLocked():
		return Extended{}, fmt.Errorf("%w: expected seq %d, last turn at %d", ErrMoved, after,
			s.lastTurnSeqLocked())
	}
	events, pending, err := s.planLocked(items)
	if err != nil {
		return Extended{}, err
	}
	if answer {
		if err := checkAnswerable(items[len(items)-1].Kind, pending); err != nil {
			return Extended{}, err
		}
	}
	if err := s.appendAllLocked(ctx, events); err != nil {
		return Extended{}, err
	}
	s.pending = pending
	res := Extended{LastSeq: s.lastSeqLocked()}
	if answer {
		// The turns are stored whatever the admission says: a refusal (budget,
		// runaway guard) is returned with them, and a retry answers them later.
		err := s.startAnswerLocked(received)
		res.Answering = s.running
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// lastTurnSeqLocked is the seq of the last user turn, tool result or answer: the
// point a client's copy of the conversation can end at. Events the server adds
// for itself (a rollup, say) do not move it. s.mu must be held.
func (s *Session) lastTurnSeqLocked() uint64 {
	for i := len(s.events) - 1; i >= 0; i-- {
		switch s.events[i].Kind {
		case KindUser, KindToolResult, KindAssistant:
			return s.events[i].Seq
		}
	}
	return 0
}

// checkItem validates an item against the limits before any lock is taken.
func (m *Manager) checkItem(it *Item) error {
	if it.Kind != KindAssistant {
		return m.checkInput(&Input{Kind: it.Kind, TurnID: it.TurnID, Text: it.Text,
			ToolCallID: it.ToolCallID, IsError: it.IsError})
	}
	l := m.cfg.Limits
	switch {
	case len(it.Text) > l.MaxTurnBytes:
		return fmt.Errorf("%w: answer text over %d bytes", ErrInvalid, l.MaxTurnBytes)
	case !utf8.ValidString(it.Text):
		return fmt.Errorf("%w: answer text is not valid UTF-8", ErrInvalid)
	case len(it.ToolCalls) > maxItemCalls:
		return fmt.Errorf("%w: more than %d tool calls in one answer", ErrInvalid, maxItemCalls)
	case strings.TrimSpace(it.Text) == "" && len(it.ToolCalls) == 0:
		return fmt.Errorf("%w: an answer needs text or tool calls", ErrInvalid)
	}
	for _, c := range it.ToolCalls {
		switch {
		case c.ID == "" || len(c.ID) > l.MaxIDBytes:
			return fmt.Errorf("%w: tool call id must have 1 to %d bytes", ErrInvalid, l.MaxIDBytes)
		case c.Name == "" || len(c.Name) > 64:
			return fmt.Errorf("%w: tool call name must have 1 to 64 bytes", ErrInvalid)
		case len(c.Arguments) > l.MaxTurnBytes || !utf8.ValidString(c.Arguments):
			return fmt.Errorf("%w: tool call arguments too long or not UTF-8", ErrInvalid)
		}
	}
	return nil
}

// duplicateLocked reports whether every turn of items was appended before with
// the same content, and the seq of the last of them. Some turns seen and others
// not, or a seen ID with other content, is ErrTurnIDConflict. s.mu must be held.
func (s *Session) duplicateLocked(items []Item) (uint64, bool, error) {
	var seen, turns int
	var last uint64
	for i := range items {
		it := &items[i]
		if it.Kind == KindAssistant {
			continue
		}
		turns++
		seq, ok := s.turnIDs[it.TurnID]
		if !ok {
			continue
		}
		e := &s.events[seq-1]
		if e.Kind != it.Kind || e.Text != it.Text || e.ToolCallID != it.ToolCallID {
			return 0, false, fmt.Errorf("%w: %q", ErrTurnIDConflict, it.TurnID)
		}
		seen++
		last = max(last, seq)
	}
	switch {
	case seen == 0:
		return 0, false, nil
	case seen < turns:
		return 0, false, fmt.Errorf("%w: some turns of the batch were appended before",
			ErrTurnIDConflict)
	}
	return last, true, nil
}

// planLocked numbers the events of items and works out the tool calls that wait
// for results once they are appended, checking that every tool result answers a
// waiting call and that nothing else comes while calls wait. s.mu must be held.
func (s *Session) planLocked(items []Item) ([]Event, map[string]bool, error) {
	pending := make(map[string]bool, len(s.pending))
	for id := range s.pending {
		pending[id] = true
	}
	ids := make(map[string]bool, len(items))
	now := time.Now().UTC()
	events := make([]Event, len(items))
	for i := range items {
		it := &items[i]
		if it.Kind != KindToolResult && len(pending) > 0 {
			return nil, nil, fmt.Errorf("%w: %d tool call(s) wait for results",
				ErrToolResultsPending, len(pending))
		}
		if it.Kind != KindAssistant {
			if ids[it.TurnID] {
				return nil, nil, fmt.Errorf("%w: %q twice in one batch", ErrTurnIDConflict, it.TurnID)
			}
			ids[it.TurnID] = true
		}
		e := Event{Seq: s.lastSeqLocked() + uint64(i) + 1, Kind: it.Kind, Time: now,
			TurnID: it.TurnID, Text: it.Text, ToolCallID: it.ToolCallID, IsError: it.IsError}
		switch it.Kind {
		case KindToolResult:
			if !pending[it.ToolCallID] {
				return nil, nil, fmt.Errorf("%w: %q", ErrUnknownToolCall, it.ToolCallID)
			}
			delete(pending, it.ToolCallID)
		case KindAssistant:
			e.ToolCalls = append([]providers.ToolCall(nil), it.ToolCalls...)
			e.Status = providers.StatusComplete
			pending = pendingCalls(&e)
		}
		e.Tokens = countTokens(&e)
		events[i] = e
	}
	return events, pending, nil
}

// checkAnswerable reports whether a log that ends with an item of kind last and has
// pending calls waiting can be answered now.
func checkAnswerable(last Kind, pending map[string]bool) error {
	switch {
	case len(pending) > 0:
		return fmt.Errorf("%w: %d tool call(s) wait for results", ErrToolResultsPending,
			len(pending))
	case last == KindAssistant:
		return fmt.Errorf("%w: the last item is an answer; nothing to answer", ErrInvalid)
	}
	return nil
}

// appendAllLocked stores events durably in one write, adds them to the log and
// tells the subscribers. s.mu must be held.
func (s *Session) appendAllLocked(ctx context.Context, events []Event) error {
	recs := make([]storage.Record, len(events))
	for i := range events {
		data, err := encodeEvent(&events[i])
		if err != nil {
			return err
		}
		recs[i] = storage.Record{Seq: events[i].Seq, Data: data}
	}
	if err := s.checkWritableLocked(); err != nil {
		return err
	}
	if err := s.mgr.store.Append(ctx, s.id, recs); err != nil {
		s.onAppendFailedLocked(err)
		return fmt.Errorf("session: append to %s: %w", s.id, err)
	}
	first := len(s.events)
	s.events = append(s.events, events...)
	s.lastUsed = time.Now()
	for i := first; i < len(s.events); i++ {
		e := &s.events[i]
		if e.Kind != KindAssistant {
			s.turnIDs[e.TurnID] = e.Seq
			s.mgr.turns.Add(1)
		}
		s.publishLocked(nil, e)
	}
	return nil
}
