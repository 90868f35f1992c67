package session

import "time"

// Resume says how a subscription caught up.
type Resume struct {
	Info
	// Snapshot is true when the client's position could not be trusted (another
	// epoch, or a seq the log does not have): every event was sent from seq 1, and
	// the client must drop what it held.
	Snapshot bool
	// Missed is the number of durable events sent to catch up.
	Missed int
}

// Subscribe registers sub and brings it up to date, atomically: it delivers a
// NoteSubscribed, the durable events after lastSeq (as NoteEvent), then the answer in flight so far (as
// NotePartial), and from then on every new note, so the subscriber sees each event
// exactly once and no delta twice.
//
// If epoch is not the session's epoch, or lastSeq is past the end of the log, the
// subscriber's view belongs to another log: it gets every event from seq 1 and
// Resume.Snapshot is set. A new client passes the session's epoch and lastSeq 0.
func (s *Session) Subscribe(sub Subscriber, epoch, lastSeq uint64) Resume {
	s.mu.Lock()
	defer s.mu.Unlock()

	r := Resume{Info: Info{ID: s.id, Tenant: s.tenant, Epoch: s.epoch,
		LastSeq: s.lastSeqLocked(), Settings: s.settings}}
	if s.dropped {
		sub.Deliver(Note{Kind: NoteClosed, Err: ErrNotOwner})
		return r
	}
	if epoch != s.epoch || lastSeq > s.lastSeqLocked() {
		r.Snapshot = true
		lastSeq = 0
	}
	r.Missed = int(s.lastSeqLocked() - lastSeq)
	head := r
	sub.Deliver(Note{Kind: NoteSubscribed, Resume: &head})
	for i := lastSeq; i < s.lastSeqLocked(); i++ {
		sub.Deliver(Note{Kind: NoteEvent, Event: &s.events[i]})
	}
	if s.partial != nil {
		p := *s.partial
		p.ToolCalls = append(p.ToolCalls[:0:0], p.ToolCalls...)
		sub.Deliver(Note{Kind: NotePartial, Seq: p.Seq, Partial: &p})
	}
	s.subs[sub] = struct{}{}
	s.lastUsed = time.Now()
	return r
}

// Unsubscribe removes sub; it hears nothing more. Unknown subscribers are ignored.
// A running answer goes on without its subscribers.
func (s *Session) Unsubscribe(sub Subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, sub)
	s.lastUsed = time.Now()
}

// idleSinceLocked reports whether the session has no subscribers and no running
// answer, and since when it has been unused. s.mu must be held.
func (s *Session) idleSinceLocked() (time.Time, bool) {
	return s.lastUsed, len(s.subs) == 0 && !s.running
}
