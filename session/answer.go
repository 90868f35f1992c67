package session

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers"
)

// startAnswerLocked marks the session running and starts producing the answer to
// the turn just appended. s.mu must be held. It returns the refusal of the
// runaway guard (ErrPaused) or of a budget (finops.ErrBudgetExceeded); the answer
// is then not started.
//
// The answer runs on the manager's context, not the client's: a client that drops
// does not stop it, and is billed for it all the same.
func (s *Session) startAnswerLocked(received time.Time) error {
	next, err := s.admitNextLocked()
	if err != nil {
		return err
	}
	s.launchLocked(next, received)
	return nil
}

// nextAnswer is an answer admitted and not yet launched.
type nextAnswer struct {
	req  *providers.Request
	seq  uint64
	fits bool // the request fits the model's window without a rollup first
}

// admitNextLocked marks the session running, lays out the request of the answer
// to the end of the log and admits it (admitAnswerLocked). On a refusal the
// session is not running. s.mu must be held.
func (s *Session) admitNextLocked() (nextAnswer, error) {
	s.running = true
	next := nextAnswer{seq: s.lastSeqLocked() + 1}
	s.partial = &Partial{Seq: next.seq}
	next.req, next.fits = s.nextRequestLocked()
	if err := s.admitAnswerLocked(next.req, s.requestTokensLocked(), next.seq); err != nil {
		s.running, s.partial = false, nil
		return nextAnswer{}, err
	}
	return next, nil
}

// launchLocked runs the admitted answer on a goroutine the manager owns and
// returns a channel closed once it has ended (finish included), or nil when
// shutdown refused it. s.mu must be held.
func (s *Session) launchLocked(next nextAnswer, received time.Time) <-chan struct{} {
	ctx, stop := context.WithCancel(s.mgr.answerCtx)
	s.stop, s.stopped = stop, false
	req, seq, done := next.req, next.seq, make(chan struct{})
	if !s.mgr.goAnswer(func() {
		defer close(done)
		if !next.fits {
			req, seq = s.fitRequest(ctx) // a rollup first: the next seq is its
		}
		s.answer(ctx, req, seq, received)
	}) {
		// Shutdown began between the check and now: leave the turn unanswered; it
		// is answered when the session is next loaded.
		stop()
		s.running, s.partial, s.stop = false, nil, nil
		s.releaseLocked()
		return nil
	}
	return done
}

// Cancel stops the answer in flight. The answer is stored with what it said so far,
// status aborted and error code "cancelled", and billed for what the provider
// reported. Without an answer in flight Cancel does nothing: the answer may have
// ended just before the request arrived.
func (s *Session) Cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stopped = true
		s.stop()
	}
}

// answer calls the provider, relays the deltas and stores the answer. It runs on
// its own goroutine, owned by the manager.
func (s *Session) answer(ctx context.Context, req *providers.Request, seq uint64,
	received time.Time) {
	ctx, cancel := context.WithTimeout(ctx, s.mgr.cfg.AnswerTimeout)
	defer cancel()
	if err := checkRequest(req); err != nil {
		s.finish(s.refusedEvent(req, err), err) // refused before any money is spent
		return
	}

	sent, trace := time.Now(), &providers.Trace{}
	ctx = providers.WithTrace(ctx, trace) // reports when the request was written
	var firstDelta time.Time
	// text is the answer so far; see relay.
	var text answerText
	req.Fallback = s.settings.FallbackModels // fixed for the session's life: no lock
	resp, err := s.mgr.provider.Complete(ctx, req, func(d providers.Delta) {
		if firstDelta.IsZero() {
			firstDelta = time.Now()
		}
		s.relay(seq, d, &text)
	})
	e := s.answerEvent(req, resp, err)
	if s.cancelled() && err != nil {
		e.Status, e.ErrorCode = providers.StatusAborted, "cancelled"
	}
	e.Timing = &Timing{
		AddedMS: ms(s.mgr.observeAdded(received, sent, trace)),
		TotalMS: ms(time.Since(sent)),
	}
	if !firstDelta.IsZero() {
		e.Timing.FirstTokenMS = ms(firstDelta.Sub(sent))
	}
	s.finish(e, err)
}

func (s *Session) cancelled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// answerText is the text and the tool calls' arguments of an answer so far. The
// partial's Text and Arguments are views of them, so a delta costs its own length,
// not the answer's, and a snapshot of the partial keeps what it had (a Builder
// never changes the bytes it has written).
type answerText struct {
	text strings.Builder
	args []*strings.Builder // by tool call index
}

// relay adds a delta to the answer in flight and passes it to the subscribers.
// text holds the answer so far.
func (s *Session) relay(seq uint64, d providers.Delta, text *answerText) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.partial
	if p == nil || p.Seq != seq {
		return
	}
	s.observeCommitWaitLocked(d.At)
	n := Note{Kind: NoteDelta, Seq: seq, Delta: d, Ready: d.At}
	if !d.At.IsZero() && s.durableAt.After(d.At) {
		n.Ready = s.durableAt
	}
	switch d.Kind {
	case providers.DeltaText:
		n.Offset = len(p.Text)
		text.text.WriteString(d.Text)
		p.Text = text.text.String()
	case providers.DeltaToolCall:
		for len(p.ToolCalls) <= d.Index {
			p.ToolCalls = append(p.ToolCalls, providers.ToolCall{})
		}
		c := &p.ToolCalls[d.Index]
		if d.ID != "" {
			c.ID = d.ID
		}
		if d.Name != "" {
			c.Name = d.Name
		}
		for len(text.args) <= d.Index {
			text.args = append(text.args, &strings.Builder{})
		}
		n.Offset = len(c.Arguments)
		text.args[d.Index].WriteString(d.Arguments)
		c.Arguments = text.args[d.Index].String()
	default:
		return
	}
	for sub := range s.subs {
		sub.Deliver(n)
	}
}

// answerEvent turns what the provider returned into the assistant event to store.
func (s *Session) answerEvent(req *providers.Request, resp *providers.Response,
	err error) Event {
	e := Event{Kind: KindAssistant, Time: s.mgr.now().UTC(), Model: req.Model,
		Omitted: s.omittedBy(req)}
	if resp == nil {
		e.Status = StatusFailed
		e.ErrorCode = errorCode(err)
		return e
	}
	if resp.Model != "" {
		e.Model = resp.Model
	}
	e.Text = resp.Text
	e.ToolCalls = resp.ToolCalls
	e.Status = resp.Status
	e.StopReason = resp.StopReason
	if err != nil {
		e.Status = providers.StatusIncomplete
		e.ErrorCode = errorCode(err)
	}
	if e.Status == "" {
		e.Status = providers.StatusComplete
	}
	if e.Status == providers.StatusComplete && e.Text == "" && len(e.ToolCalls) == 0 {
		e.ErrorCode = "empty_answer"
	}
	e.Tokens = countTokens(&e)
	u := resp.Usage
	if !resp.UsageReported {
		u = s.estimateUsage(&e, u)
		e.UsageEstimate = true
	}
	// A stream that broke or was cancelled may have reported usage only at its
	// start (Anthropic's message_start says output_tokens 1): the text streamed
	// since is billed by its local count, so stopping early buys nothing free.
	if e.Status != providers.StatusComplete && u.OutputTokens < e.Tokens {
		u.OutputTokens = e.Tokens
		e.UsageEstimate = true
	}
	e.Usage = &u
	e.CostUSD = s.mgr.cost(e.Model, u)
	return e
}

// estimateUsage fills in the usage of an answer whose stream was cut before the
// provider reported it: the whole prompt as uncached input (the worst case) and the
// output counted locally.
func (s *Session) estimateUsage(e *Event, seen providers.Usage) providers.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := seen
	if u.PromptTokens() == 0 {
		u.InputTokens = s.sentTokensLocked()
	}
	if u.OutputTokens < e.Tokens {
		u.OutputTokens = e.Tokens
	}
	return u
}

// finish stores the answer, tells the subscribers and makes the session ready for
// the next turn. An answer that cannot be stored is lost with its cost noted in
// the log line; the turn stays unanswered and is answered again on the next load.
func (s *Session) finish(e Event, cause error) {
	defer s.mgr.deciding()() // the answer shows before the rollup that follows it
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	s.partial = nil
	if s.stop != nil {
		s.stop()
		s.stop, s.stopped = nil, false
	}
	if s.abandoned != nil {
		s.finishAbandonedLocked(&e) // its turn was not stored (overlap.go)
		return
	}

	// The answer is stored even during shutdown: the context of the store write
	// must outlive the answer's.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.bookLocked(&e)
	stored, err := s.appendLocked(ctx, e)
	if err != nil && s.dropped {
		// Another node owns the session now and answers the turn again.
		s.mgr.log.Info("answer not stored: the session moved", "session", s.id, "err", err)
		s.settleLocked(nil)
		return
	}
	if err != nil {
		s.mgr.log.Error("answer not stored", "session", s.id, "seq", e.Seq, "err", err)
		s.settleLocked(nil)
		return
	}
	s.pending = pendingCalls(stored)
	s.publishLocked(nil, stored)
	s.settleLocked(stored)
	s.logAnswer(stored, cause)
	s.afterAnswerLocked()
}

func (s *Session) logAnswer(e *Event, cause error) {
	lvl := slog.LevelDebug
	if cause != nil {
		lvl = slog.LevelWarn
	}
	attrs := []any{"session", s.id, "seq", e.Seq, "model", e.Model, "status", e.Status}
	if e.Usage != nil {
		attrs = append(attrs, "input", e.Usage.InputTokens, "cache_read",
			e.Usage.CacheReadTokens, "cache_write", e.Usage.CacheWriteTokens(),
			"output", e.Usage.OutputTokens, "cost_usd", e.CostUSD)
	}
	if cause != nil {
		attrs = append(attrs, "err", cause)
	}
	s.mgr.log.Log(context.Background(), lvl, "answer stored", attrs...)
}

// pendingCalls returns the tool calls of an answer that wait for results.
func pendingCalls(e *Event) map[string]bool {
	calls := e.completeCalls()
	p := make(map[string]bool, len(calls))
	for _, c := range calls {
		p[c.ID] = true
	}
	return p
}

// errorCode names a provider failure for the log and the client.
func errorCode(err error) string {
	var pe *providers.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "provider_timeout"
	case errors.Is(err, context.Canceled):
		return "shutdown"
	case errors.As(err, &pe) && pe.Type == providers.TypeConnection:
		return "provider_unreachable"
	case errors.As(err, &pe) && pe.Status == 429:
		return "provider_rate_limited"
	case errors.As(err, &pe) && pe.Temporary:
		return "provider_unavailable"
	case errors.As(err, &pe):
		return "provider_error"
	case errors.Is(err, providers.ErrStreamCut):
		return "provider_stream_cut"
	default:
		return "provider_unreachable"
	}
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
