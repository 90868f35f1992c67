package session

// Booking. Every answer's provider call is booked in the ledger once, whatever
// crashes:
//
//  1. At admission a pending mark (session, seq) is written, on its own goroutine
//     so that the disk write overlaps the provider call.
//  2. finish waits for the mark, appends the answer event (usage, cost, naive
//     cost), then records the ledger entry derived from that event alone; the
//     record removes the mark in the same write.
//  3. A crash between the append and the record leaves the mark behind: the next
//     start (RecoverLedger) derives the entry again from the stored event.
//
// A record is keyed by session, seq and purpose, so deriving it twice books it
// once.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// markPending writes the pending mark of the admitted answer on its own
// goroutine, so that the mark's disk write overlaps the provider call; finish
// waits for it before storing the answer. Without a ledger it does nothing.
func (s *Session) markPending(adm *admission) {
	l := s.mgr.cfg.Ledger
	if l == nil {
		return
	}
	adm.marked = make(chan struct{})
	go func() {
		defer close(adm.marked)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p := finops.PendingCall{Tenant: adm.tenant, Session: adm.session, Seq: adm.seq}
		if err := l.MarkPending(ctx, p); err != nil {
			s.mgr.log.Error("pending ledger mark not written", "session", adm.session,
				"seq", adm.seq, "err", err)
		}
	}()
}

// bookLocked completes the answer event e before it is stored: its naive cost
// and the budget's note. s.mu must be held.
func (s *Session) bookLocked(e *Event) {
	adm := s.admission
	if adm != nil {
		e.Budget = adm.note
		if adm.marked != nil {
			<-adm.marked
		}
	}
	if e.Usage == nil || s.mgr.cfg.Cost == nil {
		return
	}
	if b, err := finops.BookTurn(s.mgr.costOf(e.Model), tokensOf(*e.Usage), e.Omitted); err ==
		nil {
		e.NaiveCostUSD = b.NaiveCostUSD
	}
}

// settleLocked books the stored answer in the ledger and releases its
// reservation; with stored nil (the answer could not be stored) it only
// releases. s.mu must be held: the next answer of the session is admitted only
// after this one's cost counts as spent.
func (s *Session) settleLocked(stored *Event) {
	adm := s.admission
	s.admission = nil
	l := s.mgr.cfg.Ledger
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case l == nil:
	case stored == nil && adm != nil:
		if err := l.ClearPending(ctx, s.id, adm.seq); err != nil {
			s.mgr.log.Warn("pending ledger mark not cleared", "session", s.id, "err", err)
		}
	case stored != nil:
		if err := l.Record(ctx, s.mgr.ledgerEntry(s.tenant, s.id, stored)); err != nil {
			// The pending mark stays: the entry is booked at the next start.
			s.mgr.log.Error("answer not booked", "session", s.id, "seq", stored.Seq,
				"cost_usd", stored.CostUSD, "err", err)
			break
		}
		if adm != nil && adm.seq != stored.Seq {
			// A rollup took the seq the answer was admitted at.
			l.ClearPending(ctx, s.id, adm.seq)
		}
	}
	if adm != nil {
		adm.res.Release()
	}
}

// releaseLocked gives back the admission of an answer that never ran. s.mu must
// be held.
func (s *Session) releaseLocked() {
	adm := s.admission
	s.admission = nil
	if adm == nil {
		return
	}
	if adm.marked != nil {
		<-adm.marked
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.mgr.cfg.Ledger.ClearPending(ctx, adm.session, adm.seq)
	}
	adm.res.Release()
}

// ledgerEntry derives the ledger entry of a stored answer from the event alone,
// so that deriving it again after a crash books the same entry.
func (m *Manager) ledgerEntry(tenant, session string, e *Event) finops.Entry {
	entry := finops.Entry{
		Tenant: tenant, Session: session, Seq: e.Seq, Purpose: finops.PurposeTurn,
		Time: e.Time, Model: e.Model, Estimated: e.UsageEstimate, Status: string(e.Status),
		Booking: finops.Booking{CostUSD: e.CostUSD, NaiveCostUSD: e.NaiveCostUSD},
	}
	if e.Usage != nil {
		entry.Tokens = tokensOf(*e.Usage)
	}
	if t := e.Timing; t != nil {
		entry.LatencyMS, entry.FirstTokenMS = t.TotalMS, t.FirstTokenMS
	}
	entry.SavingsUSD = m.savings(e, entry.Tokens)
	return entry
}

// savings splits what the answer saved by lever: those of the levers that left
// tokens out of the request, and caching the rest, so that they add up to the
// event's naive cost minus its cost.
func (m *Manager) savings(e *Event, tok finops.Tokens) map[finops.Lever]float64 {
	out := map[finops.Lever]float64{}
	rest := e.NaiveCostUSD - e.CostUSD
	if m.cfg.Cost != nil && len(e.Omitted) > 0 {
		if b, err := finops.BookTurn(m.costOf(e.Model), tok, e.Omitted); err == nil {
			for lv, usd := range b.SavingsUSD {
				if lv != finops.LeverCaching {
					out[lv] = usd
					rest -= usd
				}
			}
		}
	}
	if e.NaiveCostUSD > 0 || e.CostUSD > 0 {
		out[finops.LeverCaching] = math.Round(rest*1e12) / 1e12
	}
	return out
}

// costOf is the manager's price of model, as a finops.CostFunc.
func (m *Manager) costOf(model string) finops.CostFunc {
	return func(t finops.Tokens) (float64, error) {
		return m.cfg.Cost(model, providers.Usage{
			InputTokens: t.Input, CacheWrite5mTokens: t.CacheWrite5m,
			CacheWrite1hTokens: t.CacheWrite1h, CacheReadTokens: t.CacheRead,
			OutputTokens: t.Output,
		})
	}
}

func tokensOf(u providers.Usage) finops.Tokens {
	return finops.Tokens{Input: u.InputTokens, CacheWrite5m: u.CacheWrite5mTokens,
		CacheWrite1h: u.CacheWrite1hTokens, CacheRead: u.CacheReadTokens,
		Output: u.OutputTokens}
}

// RecoverLedger books the answers that were stored but not booked when the
// process stopped: for each pending mark, the answer at its seq, derived from the
// log as settle derives it. Marks of answers never stored are cleared (an
// interrupted answer is produced again, and marked again, when its session
// loads). Call it before serving. It returns how many answers it booked.
func (m *Manager) RecoverLedger(ctx context.Context) (int, error) {
	l := m.cfg.Ledger
	if l == nil {
		return 0, nil
	}
	marks, err := l.Pending(ctx)
	if err != nil {
		return 0, err
	}
	booked := 0
	for _, p := range marks {
		e, found, err := m.answerAt(ctx, p)
		if err != nil {
			return booked, err
		}
		if !found {
			if err := l.ClearPending(ctx, p.Session, p.Seq); err != nil {
				return booked, err
			}
			continue
		}
		err = l.Record(ctx, m.ledgerEntry(p.Tenant, p.Session, &e))
		if errors.Is(err, finops.ErrInvalidEntry) {
			// It can never be booked: say so once and drop the mark.
			m.log.Error("answer cannot be booked", "session", p.Session, "seq", e.Seq,
				"cost_usd", e.CostUSD, "err", err)
			if err := l.ClearPending(ctx, p.Session, p.Seq); err != nil {
				return booked, err
			}
			continue
		}
		if err != nil {
			return booked, err
		}
		if e.Seq != p.Seq {
			if err := l.ClearPending(ctx, p.Session, p.Seq); err != nil {
				return booked, err
			}
		}
		booked++
	}
	if booked > 0 {
		m.log.Info("booked answers a stop left unbooked", "answers", booked)
	}
	return booked, nil
}

// answerAt returns the answer a pending mark speaks of: the first answer of the
// log at or after the mark's seq (within recoverLookahead events) that a provider
// call produced.
func (m *Manager) answerAt(ctx context.Context, p finops.PendingCall) (Event, bool, error) {
	recs, err := m.store.Read(ctx, p.Session, p.Seq-1, recoverLookahead)
	if errors.Is(err, storage.ErrNotFound) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("session: recover ledger: %w", err)
	}
	for _, r := range recs {
		e, err := decodeEvent(r.Seq, r.Data)
		if err != nil {
			return Event{}, false, fmt.Errorf("session: recover ledger: %w", err)
		}
		switch {
		case e.Kind == KindAssistant && e.ErrorCode == CodeBudgetExceeded:
			return Event{}, false, nil
		case e.Kind == KindAssistant:
			return e, true, nil
		case e.Kind == KindUser || e.Kind == KindToolResult:
			return Event{}, false, nil // the log went on without the answer
		}
	}
	return Event{}, false, nil
}

// recoverLookahead is how far past its pending mark an answer may have been
// stored: a rollup to fit the context may take the seq it was admitted at.
const recoverLookahead = 4
