package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// The hard ceiling: no request is ever sent that does not fit the model's context
// window with room for the answer's max_tokens. A turn that cannot fit even with
// everything foldable summarized is refused before it is stored; one that fits
// only once folded makes its answer wait for the rollup.

// nextRequestLocked lays out the request of the answer about to start, records
// its time for the TTL choice, and reports whether it fits the model. s.mu must
// be held.
func (s *Session) nextRequestLocked() (*providers.Request, bool) {
	s.observeRequestLocked()
	p := s.requestLocked()
	return p.req, s.mgr.fitsWindow(p)
}

// fitsWindow reports whether a prompt and its answer fit the model's window.
func (m *Manager) fitsWindow(p *prompt) bool {
	return p.tokens()+p.req.MaxTokens <= m.modelInfo(p.req.Model).window
}

// fitRequest makes room for an answer whose request did not fit: it waits for a
// rollup in flight, then, if that was not enough, folds every turn it may into
// the summary at once. It returns the request to send, nil when nothing makes it
// fit, and the seq the answer will have. The answer in flight shows no partial
// until then, since the checkpoint takes a seq before it.
func (s *Session) fitRequest(ctx context.Context) (*providers.Request, uint64) {
	s.mu.Lock()
	s.partial = nil
	rolling, done := s.rolling, s.rolled
	s.mu.Unlock()
	if rolling {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}

	s.mu.Lock()
	s.appendReadyLocked()
	p := s.requestLocked()
	if s.mgr.fitsWindow(p) {
		return p.req, s.answerSeqLocked()
	}
	plan, ok := s.planCheckpointLocked(true)
	if !ok {
		return nil, s.answerSeqLocked()
	}
	plan.cp.Reason = "overflow"
	input := summaryInput(&s.settings.Context, s.events, plan)
	s.mu.Unlock()

	res, err := s.summarize(ctx, plan, input)

	s.mu.Lock()
	if err != nil {
		s.mgr.log.Warn("rollup to fit the context failed", "session", s.id, "err", err)
	} else {
		s.appendCheckpointLocked(plan, res.text, res)
	}
	p = s.requestLocked()
	seq := s.answerSeqLocked()
	if !s.mgr.fitsWindow(p) {
		return nil, seq
	}
	return p.req, seq
}

// answerSeqLocked fixes the seq of the answer in flight at the end of the log and
// shows its partial from now on, then releases s.mu, which must be held.
func (s *Session) answerSeqLocked() uint64 {
	defer s.mu.Unlock()
	seq := s.lastSeqLocked() + 1
	s.partial = &Partial{Seq: seq}
	return seq
}

// checkRequest is the last check before a request is sent: it fits (nil means it
// could not be made to) and every tool call is paired with its results.
func checkRequest(req *providers.Request) error {
	if req == nil {
		return ErrContextOverflow
	}
	return checkPairing(req)
}

// refusedEvent is the answer stored for a request that was not sent: failed, with
// the reason as its error code, and no cost.
func (s *Session) refusedEvent(req *providers.Request, err error) Event {
	e := Event{Kind: KindAssistant, Time: s.mgr.now().UTC(), Status: StatusFailed,
		Model: s.settings.Model, ErrorCode: "context_overflow"}
	if req != nil {
		e.Model = req.Model
	}
	if errors.Is(err, ErrToolPairing) {
		e.ErrorCode = "layout_invalid"
		s.mgr.log.Error("request refused: tool calls and results do not pair",
			"session", s.id, "err", err)
	}
	return e
}

// admitTokensLocked refuses a turn whose prompt could not fit the model's window
// even with every turn that may be folded summarized at the longest summary:
// tools, system, the summary, the pinned turns and the unit the turn joins. It
// returns the turn's token count, which its event keeps (a turn's text is counted
// once), or ErrContextOverflow; the turn is then not stored. s.mu must be held.
func (s *Session) admitTokensLocked(in *Input) (int, error) {
	tokens := providers.CountTokens(in.Text)
	add := tokens + messageFraming
	window := s.mgr.modelInfo(s.settings.Model).window
	limit := window - s.settings.MaxTokens
	idx := s.logIndexLocked()
	raw := s.settingsTokens + idx.raw
	if raw+add <= limit {
		return tokens, nil // the whole log fits: no need to lay it out
	}
	least := s.settingsTokens + maxSummaryTokens + summaryFramingTokens + messageFraming + add
	least += idx.pinnedTokens()
	if n := len(idx.units); n > 0 && in.Kind == KindToolResult && !idx.units[n-1].pinned {
		least += idx.units[n-1].tokens
	}
	if least > limit {
		return 0, fmt.Errorf("%w: at least %d tokens with %d for the answer; %s takes %d",
			ErrContextOverflow, least, s.settings.MaxTokens, s.settings.Model, window)
	}
	return tokens, nil
}
