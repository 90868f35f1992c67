package session

import (
	"context"
	"fmt"
)

// Pin keeps the turn or answer at seq verbatim in every later prompt, whatever a
// rollup folds, by appending a pin event (pins are durable and permanent). A tool
// call and its results are pinned together. sub, the pinning client, is told
// with a NoteAck, the other subscribers with a NoteEvent. Pinning what is already
// pinned appends nothing and acknowledges the event that pinned it, as a
// duplicate.
//
// Errors: ErrNotPinnable (seq is not a user turn, tool result or answer), ErrBusy
// (an answer is in flight: its seq is fixed, so nothing may be appended before
// it), ErrClosed, or a storage error.
func (s *Session) Pin(ctx context.Context, sub Subscriber, seq uint64) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mgr.closing():
		return nil, ErrClosed
	case seq == 0 || seq > s.lastSeqLocked():
		return nil, fmt.Errorf("%w: %d", ErrNotPinnable, seq)
	}
	if k := s.events[seq-1].Kind; k != KindUser && k != KindToolResult && k != KindAssistant {
		return nil, fmt.Errorf("%w: event %d is a %s event", ErrNotPinnable, seq, k)
	}
	if e := s.pinOfLocked(seq); e != nil {
		if sub != nil {
			sub.Deliver(Note{Kind: NoteAck, Event: e, Duplicate: true})
		}
		return e, nil
	}
	if s.running {
		return nil, ErrBusy
	}
	stored, err := s.appendLocked(ctx, Event{Kind: KindPin, Time: s.mgr.now().UTC(),
		Target: seq})
	if err != nil {
		return nil, err
	}
	s.publishLocked(sub, stored)
	return stored, nil
}

// pinOfLocked returns the event that pinned seq: the turn itself when it was
// submitted pinned, or a pin event; nil when seq is not pinned. s.mu must be held.
func (s *Session) pinOfLocked(seq uint64) *Event {
	if s.events[seq-1].Pinned {
		return &s.events[seq-1]
	}
	for i := range s.events {
		if e := &s.events[i]; e.Kind == KindPin && e.Target == seq {
			return e
		}
	}
	return nil
}

// HistoryPage returns up to limit events after seq after, and whether the log
// has more after them. The log is never shortened: rollups add checkpoints and
// leave every event in place, so the whole raw history is always there.
func (s *Session) HistoryPage(after uint64, limit int) ([]Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lastSeqLocked()
	if after >= n {
		return nil, false
	}
	end := n
	if limit > 0 && after+uint64(limit) < n {
		end = after + uint64(limit)
	}
	return append([]Event(nil), s.events[after:end]...), end < n
}
