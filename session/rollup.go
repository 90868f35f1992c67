package session

import (
	"context"
	"slices"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
)

// Checkpoint is the state of a session's prompt after a rollup event: a summary
// (the event's Text) stands in for every event up to Through, and the tool
// results in Elided are shown as stubs. The latest rollup event's checkpoint is
// the one in force, and each is whole: it carries over what the one before left
// out. Nothing in the log is deleted; the full history stays readable.
type Checkpoint struct {
	// Through is the last seq the summary covers; 0 when there is no summary.
	Through uint64 `json:"through"`
	// Elided are the seqs of the tool results shown as stubs.
	Elided []uint64 `json:"elided,omitempty"`
	// Reason is why the checkpoint was taken: "watermark" (the verbatim turns
	// passed the high watermark and folding them pays), "ration" (leaving old tool
	// output out pays) or "overflow" (the next request would not fit the model).
	Reason string `json:"reason"`
	// Figures are the numbers the decision was made on.
	Figures RollupFigures `json:"figures"`
}

// RollupFigures are the numbers a checkpoint was decided on, in local token
// counts and USD at the price table. The summary's actual cost is the rollup
// event's CostUSD.
type RollupFigures struct {
	// PromptTokens and NewPromptTokens are the prompt before and after.
	PromptTokens    int `json:"prompt_tokens"`
	NewPromptTokens int `json:"new_prompt_tokens"`
	// FoldedTokens were newly summarized; ElidedTokens newly left out as stubs.
	FoldedTokens int `json:"folded_tokens"`
	ElidedTokens int `json:"elided_tokens"`
	// RewriteTokens is the part of the prompt the next request writes to the cache
	// again because it changed.
	RewriteTokens int `json:"rewrite_tokens"`
	// HorizonTurns is how many coming requests the savings are projected over.
	HorizonTurns int `json:"horizon_turns"`
	// SavingsUSD is the projected saving over the horizon; SummaryCostUSD the
	// estimated cost of the summary; RewriteCostUSD the cost of writing the changed
	// part again instead of reading it.
	SavingsUSD     float64 `json:"savings_usd"`
	SummaryCostUSD float64 `json:"summary_cost_usd"`
	RewriteCostUSD float64 `json:"rewrite_cost_usd"`
}

// Horizon bounds: a session that has answered n times is expected to answer about
// n more (the longer a conversation has run, the longer it tends to go on),
// between these bounds.
const (
	minHorizon = 2
	maxHorizon = 24
)

// checkpointPlan is a checkpoint decided but not yet taken.
type checkpointPlan struct {
	cp      Checkpoint
	fold    []int // indexes into the log of the events to summarize
	summary bool  // a summary must be written
	budget  int   // the summary's max_tokens
	prev    checkpointView
}

// afterAnswerLocked runs after an answer is stored: it appends a checkpoint the
// background rollup finished meanwhile, then decides whether to take another. A
// checkpoint that only leaves tool output out is appended at once; one that needs
// a summary starts the summarizer on a goroutine the manager owns, off the turn's
// critical path. s.mu must be held.
func (s *Session) afterAnswerLocked() {
	s.appendReadyLocked()
	if s.rolling || s.mgr.closing() {
		return
	}
	plan, ok := s.planCheckpointLocked(false)
	if !ok {
		return
	}
	if !plan.summary {
		s.appendCheckpointLocked(plan, "", nil)
		return
	}
	input := summaryInput(&s.settings.Context, s.events, plan)
	s.rolling = true
	s.rolled = make(chan struct{})
	done := s.rolled
	s.mgr.rollups.Add(1)
	if !s.mgr.goAnswer(func() { s.rollupInBackground(plan, input, done) }) {
		s.mgr.rollups.Add(-1)
		s.rolling = false
		close(done)
	}
}

// rollupInBackground writes the summary and appends the checkpoint, or leaves it
// for the answer in flight to append when it is stored.
func (s *Session) rollupInBackground(plan checkpointPlan, input string, done chan struct{}) {
	defer close(done)
	defer s.mgr.rollups.Add(-1)
	ctx, cancel := context.WithTimeout(s.mgr.answerCtx, s.mgr.cfg.AnswerTimeout)
	defer cancel()
	res, err := s.summarize(ctx, plan, input)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.rolling = false
	if err != nil {
		s.mgr.log.Warn("rollup failed; the prompt stays as it was", "session", s.id,
			"through", plan.cp.Through, "err", err)
		return
	}
	s.ready = &readyCheckpoint{plan: plan, summary: res}
	if !s.running {
		s.appendReadyLocked()
	}
}

// readyCheckpoint is a rollup whose summary is written, waiting to be appended
// when no answer is in flight (an answer's seq is fixed when it starts).
type readyCheckpoint struct {
	plan    checkpointPlan
	summary *summaryResult
}

// appendReadyLocked appends the checkpoint the background rollup finished, if
// any. s.mu must be held and no answer may be in flight.
func (s *Session) appendReadyLocked() {
	r := s.ready
	if r == nil {
		return
	}
	s.ready = nil
	s.appendCheckpointLocked(r.plan, r.summary.text, r.summary)
}

// appendCheckpointLocked stores a rollup event for plan with the summary text (the
// previous one when the plan writes none). s.mu must be held.
func (s *Session) appendCheckpointLocked(plan checkpointPlan, text string,
	res *summaryResult) {
	if s.logIndexLocked().checkpoint(s.events).through != plan.prev.through {
		return // the log moved to another checkpoint meanwhile: this one is stale
	}
	e := Event{Kind: KindRollup, Time: s.mgr.now().UTC(), Rollup: &plan.cp}
	e.Text, e.Tokens = plan.prev.summary, plan.prev.summaryTokens
	if plan.summary {
		e.Text, e.Tokens = text, providers.CountTokens(text)
		if res != nil && res.text == text {
			e.Tokens = res.tokens // counted once, when it was written
		}
	}
	if res != nil {
		e.Model, e.Usage, e.UsageEstimate = res.model, &res.usage, res.estimated
		e.CostUSD = s.mgr.cost(res.model, res.usage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := s.appendLocked(ctx, e)
	if err != nil {
		s.mgr.log.Error("rollup not stored", "session", s.id, "err", err)
		return
	}
	s.publishLocked(nil, stored)
	s.bookRollupLocked(ctx, stored)
	f := plan.cp.Figures
	s.mgr.log.Debug("rollup stored", "session", s.id, "seq", stored.Seq,
		"reason", plan.cp.Reason, "through", plan.cp.Through, "elided", len(plan.cp.Elided),
		"prompt_tokens", f.PromptTokens, "new_prompt_tokens", f.NewPromptTokens,
		"cost_usd", e.CostUSD)
}

// bookRollupLocked books the summary call of a stored rollup event in the ledger:
// its whole cost as a negative saving of the rollup lever (what the rollup
// saves is booked with the answers it shortens, by their omitted tokens). A
// crash between the append and the booking loses the booking, not the cost: it
// stays in the rollup event. s.mu must be held.
func (s *Session) bookRollupLocked(ctx context.Context, e *Event) {
	l := s.mgr.cfg.Ledger
	if l == nil || e.Usage == nil || s.mgr.cfg.Cost == nil {
		return
	}
	tok := tokensOf(*e.Usage)
	b, err := finops.BookOverhead(s.mgr.costOf(e.Model), tok, finops.LeverRollup)
	if err != nil {
		s.mgr.log.Warn("rollup not priced for the ledger", "session", s.id, "seq", e.Seq,
			"model", e.Model, "err", err)
		return
	}
	entry := finops.Entry{Tenant: s.tenant, Session: s.id, Seq: e.Seq,
		Purpose: finops.PurposeRollup, Time: e.Time, Model: e.Model, Tokens: tok,
		Booking: b, Estimated: e.UsageEstimate, Status: string(providers.StatusComplete)}
	if err := l.Record(ctx, entry); err != nil {
		s.mgr.log.Error("rollup not booked", "session", s.id, "seq", e.Seq,
			"cost_usd", e.CostUSD, "err", err)
	}
}

// planCheckpointLocked decides whether a checkpoint pays now, and which: fold the
// oldest verbatim turns into the summary (when they pass the high watermark) and
// leave old tool output out, or only the latter. With force (the next request
// would not fit the model) it folds down to the low watermark whatever the cost.
// s.mu must be held.
func (s *Session) planCheckpointLocked(force bool) (checkpointPlan, bool) {
	pol := &s.settings.Context
	cur := s.layoutLocked()
	idx := s.logIndexLocked()
	prev := idx.checkpoint(s.events)
	horizon := min(max(idx.answers, minHorizon), maxHorizon)
	r := s.mgr.ratesFor(s.settings.Model)
	sr := s.mgr.ratesFor(pol.SummaryModel)

	var options []checkpointPlan
	if fold, through := foldPoint(pol, idx, cur, prev, force); len(fold) > 0 {
		options = append(options, s.option(cur, prev, fold, through, horizon, r, sr))
	}
	if !force {
		options = append(options, s.option(cur, prev, nil, prev.through, horizon, r, sr))
	}
	best, found := checkpointPlan{}, false
	bestNet := 0.0
	for _, o := range options {
		f := o.cp.Figures
		if f.NewPromptTokens >= f.PromptTokens {
			continue
		}
		net := f.SavingsUSD - f.SummaryCostUSD - f.RewriteCostUSD
		s.mgr.log.Debug("rollup considered", "session", s.id, "summary", o.summary,
			"folded_tokens", f.FoldedTokens, "elided_tokens", f.ElidedTokens,
			"rewrite_tokens", f.RewriteTokens, "horizon", f.HorizonTurns,
			"savings_usd", f.SavingsUSD, "summary_cost_usd", f.SummaryCostUSD,
			"rewrite_cost_usd", f.RewriteCostUSD, "force", force)
		if (force && o.summary) || net > bestNet {
			best, found, bestNet = o, true, net
			if force {
				break
			}
		}
	}
	return best, found
}

// option works out one candidate checkpoint: fold the events of fold (through is
// the new summary's last seq) and leave out the tool results old enough, with
// its figures.
func (s *Session) option(cur *prompt, prev checkpointView, fold []int, through uint64,
	horizon int, r, sr rates) checkpointPlan {
	pol := &s.settings.Context
	keep := make(map[uint64]bool)
	for seq := range prev.elided {
		if seq > through {
			keep[seq] = true
		}
	}
	idx := s.logIndexLocked()
	for _, seq := range rationCandidatesIn(pol, s.events, idx.units, through, keep) {
		keep[seq] = true
	}
	plan := checkpointPlan{prev: prev, summary: len(fold) > 0, fold: fold,
		cp: Checkpoint{Through: through, Elided: sortedSeqs(keep), Reason: "ration"}}
	foldTokens := 0
	for _, i := range fold {
		foldTokens += s.events[i].Tokens + messageFraming
	}
	if plan.summary {
		plan.cp.Reason = "watermark"
		plan.budget = summaryBudget(foldTokens + prev.summaryTokens)
	}

	next := cur
	if plan.summary || !sameSeqs(plan.cp.Elided, prev.elided) {
		next = layoutWith(&s.settings, s.events, plan, s.cache)
	}
	f := &plan.cp.Figures
	f.PromptTokens, f.NewPromptTokens = cur.tokens(), next.tokens()
	f.FoldedTokens = foldTokens
	f.ElidedTokens = next.omitted[finops.LeverRationing] - cur.omitted[finops.LeverRationing]
	f.RewriteTokens = changedTokens(cur, next)
	f.HorizonTurns = horizon
	saved := float64(f.PromptTokens - f.NewPromptTokens)
	f.SavingsUSD = saved * r.read * float64(horizon)
	f.RewriteCostUSD = float64(f.RewriteTokens) * (r.write5m - r.read)
	if plan.summary {
		in := foldTokens + prev.summaryTokens + summaryPromptTokens
		f.SummaryCostUSD = float64(in)*sr.input + float64(plan.budget)*sr.output
	}
	return plan
}

// layoutWith lays out the prompt as it would be with plan's checkpoint taken,
// the summary counted at its budget.
func layoutWith(st *Settings, events []Event, plan checkpointPlan,
	cache *layoutCache) *prompt {
	cp := checkpointView{through: plan.cp.Through, summary: plan.prev.summary,
		summaryTokens: plan.prev.summaryTokens,
		elided:        make(map[uint64]bool, len(plan.cp.Elided))}
	if plan.summary {
		cp.summary, cp.summaryTokens = "(summary to be written)", plan.budget
	}
	for _, seq := range plan.cp.Elided {
		cp.elided[seq] = true
	}
	return layoutAt(st, events, cache, cache.indexOf(events), cp)
}

// sameSeqs reports whether seqs holds exactly the seqs of set.
func sameSeqs(seqs []uint64, set map[uint64]bool) bool {
	if len(seqs) != len(set) {
		return false
	}
	for _, seq := range seqs {
		if !set[seq] {
			return false
		}
	}
	return true
}

// changedTokens is the token count of next from the first message that differs
// from cur to its end: what the next request writes to the cache again.
func changedTokens(cur, next *prompt) int {
	i := 0
	for i < len(cur.req.Messages) && i < len(next.req.Messages) &&
		sameMessage(&cur.req.Messages[i], &next.req.Messages[i]) {
		i++
	}
	n := 0
	for _, m := range next.info[i:] {
		n += m.tokens
	}
	return n
}

// foldPoint returns the events to fold into the summary and the last seq they
// reach: the oldest unpinned units after the checkpoint, until what is left is
// at most the low watermark, never the newest unit. None unless the verbatim
// turns pass the high watermark; with force, every unit but the newest.
func foldPoint(pol *ContextPolicy, idx *logIndex, cur *prompt, prev checkpointView,
	force bool) ([]int, uint64) {
	if !pol.rollupOn() || (!force && cur.foldable <= pol.RollupHighTokens) {
		return nil, prev.through
	}
	low := pol.RollupLowTokens
	if force {
		low = 0 // the request does not fit: fold all that may be
	}
	units := idx.units
	left := cur.foldable
	var fold []int
	through := prev.through
	i := idx.firstAfter(prev.through)
	for ; i < len(units)-1 && left > low; i++ {
		u := &units[i]
		if u.lastSeq <= prev.through || u.pinned {
			continue
		}
		fold = append(fold, u.events...)
		left -= u.tokens
		through = u.lastSeq
	}
	// A fold that ends on a user turn takes its answer too, so the turns kept start
	// with a question rather than an answer to a folded one.
	if len(fold) > 0 && i < len(units)-1 && units[i-1].user && units[i-1].lastSeq == through &&
		!units[i].user && !units[i].pinned {
		fold = append(fold, units[i].events...)
		through = units[i].lastSeq
	}
	return fold, through
}

func sortedSeqs(set map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(set))
	for seq := range set {
		out = append(out, seq)
	}
	slices.Sort(out)
	return out
}
