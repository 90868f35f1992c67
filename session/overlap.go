package session

// The overlap. A turn that leaves the model something to answer does not wait for
// its durable append before its answer starts: the turn is staged (numbered and
// put in the log in memory), its answer laid out, admitted and sent, and only then
// is the append awaited. s.mu is held from the staging to the ack, so nothing of
// the turn or its answer is seen before the turn is durable: the answer's deltas
// wait for s.mu in relay, and are delivered after the ack.
//
// When the append fails, the staging is undone and the answer abandoned: it is
// cancelled at once, shows and stores nothing, and what the provider reports it
// cost is booked in the ledger under finops.PurposeUnstored. A refusal of the budget or
// of the runaway guard cannot be stored before the turn it follows, so the staged
// admission only detects it; the turn is then stored and acknowledged, and the
// answer admitted again the usual way, which stores the refusal.

import (
	"context"
	"fmt"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/storage"
)

// stagedEvent is an event numbered and put in the log in memory whose durable
// append has not returned yet, with what was there before it.
type stagedEvent struct {
	rec        storage.Record
	n          int // the length of the log before the event
	lastPrompt *prompt
	gaps       gapStats
}

// stageLocked numbers e, encodes it and puts it at the end of the log in memory,
// where layouts see it; commitLocked makes it durable or takes it out again.
// s.mu must be held until then.
func (s *Session) stageLocked(e Event) (stagedEvent, error) {
	if err := s.checkWritableLocked(); err != nil {
		return stagedEvent{}, err
	}
	e.Seq = s.lastSeqLocked() + 1
	data, err := encodeEvent(&e)
	if err != nil {
		return stagedEvent{}, err
	}
	st := stagedEvent{rec: storage.Record{Seq: e.Seq, Data: data}, n: len(s.events),
		lastPrompt: s.lastPrompt, gaps: s.gaps}
	s.events = append(s.events, e)
	return st, nil
}

// commitLocked appends the staged event durably and returns it. When the append
// fails, the event leaves the log in memory, with what was laid out from it.
// s.mu must be held.
func (s *Session) commitLocked(ctx context.Context, st stagedEvent) (*Event, error) {
	if err := s.mgr.store.Append(ctx, s.id, []storage.Record{st.rec}); err != nil {
		s.unstageLocked(st)
		s.onAppendFailedLocked(err)
		return nil, fmt.Errorf("session: append to %s: %w", s.id, err)
	}
	s.lastUsed = time.Now()
	return &s.events[st.n], nil
}

// unstageLocked takes the staged event out of the log in memory and forgets what
// was computed from it. s.mu must be held.
func (s *Session) unstageLocked(st stagedEvent) {
	clear(s.events[st.n:])
	s.events = s.events[:st.n]
	s.restoreLocked(st)
	// The layout cache (digests by seq, the log index, the encoded messages)
	// read the event; a turn sent again takes its seq with other content.
	s.cache = nil
}

// restoreLocked puts back the request and gap records as they were before the
// staging. s.mu must be held.
func (s *Session) restoreLocked(st stagedEvent) {
	s.lastPrompt, s.gaps = st.lastPrompt, st.gaps
}

// appendTurnLocked appends the turn e. With answer set (the turn leaves the
// model something to answer) it starts the answer while the append is being made
// durable, and returns late set when the answer is still to be started:
// the admission refused it, and startAnswerLocked must decide again once the turn
// is acknowledged, storing the refusal after it. On an error nothing is stored,
// the session is as it was before the turn (or dropped, as onAppendFailedLocked
// decides), and the answer, if it started, is abandoned. s.mu must be held; it is
// released while an abandoned answer ends.
func (s *Session) appendTurnLocked(ctx context.Context, e Event, answer bool,
	received time.Time) (stored *Event, late bool, err error) {
	if !answer {
		stored, err := s.appendLocked(ctx, e)
		return stored, false, err
	}
	st, err := s.stageLocked(e)
	if err != nil {
		return nil, false, err
	}
	s.staging = true
	next, err := s.admitNextLocked()
	s.staging = false
	if err != nil {
		s.restoreLocked(st)
		stored, err := s.commitLocked(ctx, st)
		return stored, err == nil, err
	}

	var done <-chan struct{}
	if next.fits {
		done = s.launchLocked(next, received) // nil when shutdown refused it
	}
	sent := s.lastPrompt
	stored, err = s.commitLocked(ctx, st)
	if err == nil && done != nil {
		s.durableAt = time.Now() // deltas read before now waited for the append
	}
	switch {
	case err != nil && done != nil:
		s.abandonLocked(ctx, done, sent)
	case err != nil && s.running:
		// Admitted and not launched: it waited for a rollup to make it fit.
		s.running, s.partial = false, nil
		s.releaseLocked()
	case err == nil && !next.fits:
		s.launchLocked(next, received)
	}
	return stored, false, err
}

// observeCommitWaitLocked passes to Config.ObserveCommitWait the time a delta
// whose provider bytes were read at `at` waited for the durable append of its
// turn, if it did, and if anyone is subscribed to see the delta. s.mu must be
// held.
func (s *Session) observeCommitWaitLocked(at time.Time) {
	if at.IsZero() || len(s.subs) == 0 {
		return
	}
	// durableAt is that of this answer's turn, or of an earlier turn, whose time
	// is before this answer started: then no delta of it counts.
	w := s.durableAt.Sub(at)
	if f := s.mgr.cfg.ObserveCommitWait; w > 0 && f != nil {
		f(w)
	}
}

// abandonLocked gives up the answer in flight, sent with the prompt sent, whose
// turn was not stored: it is cancelled, its deltas are dropped, and finish books
// what it cost and stores nothing. It then waits, with s.mu released, until the
// answer has ended, so that the session takes turns again at once; if ctx ends
// first, the session refuses turns with ErrBusy until it has. s.mu must be held.
func (s *Session) abandonLocked(ctx context.Context, done <-chan struct{}, sent *prompt) {
	s.abandoned = sent
	s.partial = nil
	s.stop()
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// finishAbandonedLocked ends an abandoned answer: it books in the ledger what the
// provider reported it cost (e, not stored), under PurposeUnstored at the seq the
// answer was admitted at, since no event of the log holds it; a second abandoned
// answer at the same seq of the session is booked once (the ledger keeps the
// first entry of a session, seq and purpose). It then releases the admission and
// appends a rollup that finished meanwhile. s.mu must be held.
func (s *Session) finishAbandonedLocked(e *Event) {
	s.abandoned = nil
	adm, l := s.admission, s.mgr.cfg.Ledger
	s.bookLocked(e)
	if l != nil && adm != nil && e.Usage != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		entry := s.mgr.ledgerEntry(s.tenant, s.id, e)
		entry.Seq, entry.Purpose = adm.seq, finops.PurposeUnstored
		if err := l.Record(ctx, entry); err != nil {
			s.mgr.log.Error("abandoned answer not booked", "session", s.id, "seq", adm.seq,
				"cost_usd", e.CostUSD, "err", err)
		}
	}
	s.mgr.log.Info("answer abandoned: its turn was not stored", "session", s.id,
		"cost_usd", e.CostUSD)
	s.settleLocked(nil)
	s.appendReadyLocked()
}

// sentTokensLocked is the local count of the prompt the answer in flight was
// sent with: the log as laid out now, or the prompt of an abandoned answer, whose
// turn the log no longer holds. s.mu must be held.
func (s *Session) sentTokensLocked() int {
	if s.abandoned != nil {
		return s.abandoned.tokens()
	}
	return s.promptTokensLocked()
}
