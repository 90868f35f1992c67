package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// rollupPolicy folds at 4000 verbatim tokens down to 500, with the cheap summary
// model, and leaves rationing and dedup off so only the rollup acts.
var rollupPolicy = ContextPolicy{RollupHighTokens: 4000, RollupLowTokens: 500,
	SummaryModel: testSummaryModel, RationAfterTurns: -1, DedupMinTokens: -1}

// untilRollup plays turns of about 100 words each until a rollup event exists,
// and returns the number of turns played.
func untilRollup(t *testing.T, h *savingsHarness, s *Session, rec *recorder,
	from, want int) int {
	t.Helper()
	i := from
	for ; len(rollups(s)) < want; i++ {
		if i > from+60 {
			t.Fatalf("no rollup after %d turns", i-from)
		}
		text := fmt.Sprintf("marker-%d ", i) + words(fmt.Sprintf("w%d-", i), 100)
		h.turn(s, rec, fmt.Sprintf("u%d", i), text)
		waitFor(t, "background rollups", func() bool { return h.mgr.RollupsRunning() == 0 })
	}
	return i
}

func TestRollupFoldsDownToTheLowMarkInOneStep(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200)})
	untilRollup(t, h, s, rec, 0, 1)

	ro := rollups(s)
	if len(ro) != 1 {
		t.Fatalf("%d rollups in one step, want 1", len(ro))
	}
	cp := ro[0]
	if cp.Rollup.Reason != "watermark" || cp.Text == "" || cp.Model != testSummaryModel ||
		cp.Usage == nil {
		t.Fatalf("rollup event: %+v", cp)
	}
	if want := providers.CountTokens(cp.Text); cp.Tokens != want {
		t.Fatalf("rollup event keeps %d tokens for its summary of %d", cp.Tokens, want)
	}
	f := cp.Rollup.Figures
	if f.SavingsUSD <= f.SummaryCostUSD+f.RewriteCostUSD {
		t.Fatalf("a rollup was taken that does not pay: %+v", f)
	}
	p := layout(&s.settings, s.History(0))
	if p.foldable > rollupPolicy.RollupLowTokens+600 {
		t.Fatalf("%d verbatim tokens left; the low mark is %d", p.foldable,
			rollupPolicy.RollupLowTokens)
	}
	if p.omitted["rollup"] == 0 {
		t.Fatal("the layout counts no tokens omitted by the rollup")
	}

	h.turn(s, rec, "after", "and now?")
	req := h.prov.answerRequests()[len(h.prov.answerRequests())-1]
	if !strings.Contains(req.Messages[0].Text, cp.Text) ||
		strings.Contains(req.Messages[0].Text, "marker-0 ") {
		t.Fatal("the next request does not start with the summary in place of the folded turns")
	}
	h.noViolations()
}

func TestRollupKeepsTheWholeLogAndSurvivesARestart(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200)})
	untilRollup(t, h, s, rec, 0, 1)
	before := layout(&s.settings, s.History(0))
	all := s.History(0)
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: the log lost events", i+1, e.Seq)
		}
	}
	if all[0].Text == "" || !strings.HasPrefix(all[0].Text, "marker-0") {
		t.Fatalf("the first turn is not in the log as it was sent: %q", all[0].Text)
	}

	h.restart()
	s2, err := h.mgr.Get(context.Background(), "t1", s.ID())
	if err != nil {
		t.Fatal(err)
	}
	after := layout(&s2.settings, s2.History(0))
	if !equalMessages(before.req.Messages, after.req.Messages) {
		t.Fatal("the prompt after a restart differs from the one before")
	}
}

func equalMessages(a, b []providers.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameMessage(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

func TestSecondRollupSummarizesOnlyWhatCameAfterTheFirst(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200)})
	next := untilRollup(t, h, s, rec, 0, 1)
	first := rollups(s)[0]
	untilRollup(t, h, s, rec, next, 2)

	sums := h.prov.summaryRequests()
	if len(sums) != 2 {
		t.Fatalf("%d summary requests, want 2", len(sums))
	}
	input := sums[1].Messages[0].Text
	if !strings.Contains(input, "Summary so far:\n"+first.Text) {
		t.Fatal("the second summary is not given the first")
	}
	folded := 0
	for _, e := range s.History(0) {
		if e.Kind == KindUser && e.Seq <= first.Rollup.Through {
			folded++
			if strings.Contains(input, "\nUser: "+strings.Fields(e.Text)[0]+" ") {
				t.Fatalf("the second summary reads turn %d again, which the first folded", e.Seq)
			}
		}
	}
	if folded == 0 {
		t.Fatal("the first rollup folded no user turn: the test tested nothing")
	}
	if second := rollups(s)[1]; second.Rollup.Through <= first.Rollup.Through {
		t.Fatalf("second rollup through %d, first %d", second.Rollup.Through,
			first.Rollup.Through)
	}
}

func TestRollupRunsOffTheTurnsCriticalPath(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	h.prov.summaryGate = make(chan struct{})
	s, rec := h.open(Settings{System: words("sys", 1200)})
	summarizing := func() bool { return len(h.prov.summaryRequests()) > 0 }
	for i := 0; !summarizing(); i++ {
		if i > 60 {
			t.Fatal("no rollup started")
		}
		h.turn(s, rec, fmt.Sprintf("u%d", i), words(fmt.Sprintf("w%d-", i), 100))
		// Either a rollup is held at the gate, or none started after this turn.
		waitFor(t, "the decision", func() bool {
			return summarizing() || h.mgr.RollupsRunning() == 0
		})
	}
	// The summary is held: the next turn is answered all the same.
	ans := h.turn(s, rec, "meanwhile", "a turn while the summary is written")
	if len(rollups(s)) != 0 {
		t.Fatal("a rollup was stored before its summary was written")
	}
	close(h.prov.summaryGate)
	waitFor(t, "the rollup", func() bool { return len(rollups(s)) == 1 })
	if ro := rollups(s)[0]; ro.Seq < ans.Seq {
		t.Fatalf("rollup at seq %d stored before the answer at %d", ro.Seq, ans.Seq)
	}
}

func TestRollupThatDoesNotPayIsNotTaken(t *testing.T) {
	policy := rollupPolicy
	policy.SummaryModel = "claude-sonnet-4-5" // priced as the session: 100x the cheap one
	policy.RollupLowTokens = 3000             // folds little, rewrites much
	h := newSavingsHarness(t, policy)
	s, rec := h.open(Settings{System: words("sys", 1200)})
	for i := 0; i < 12; i++ {
		h.turn(s, rec, fmt.Sprintf("u%d", i), words(fmt.Sprintf("w%d-", i), 100))
	}
	waitFor(t, "background rollups", func() bool { return h.mgr.RollupsRunning() == 0 })
	if p := layout(&s.settings, s.History(0)); p.foldable <= policy.RollupHighTokens {
		t.Fatalf("the test never passed the high mark: %d tokens", p.foldable)
	}
	if n := len(rollups(s)); n != 0 {
		t.Fatalf("%d rollups taken although none pays", n)
	}
}

func TestPinnedTurnsStayVerbatimThroughARollup(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200)})
	n := len(rec.answers())
	in := userTurn("pinned", "remember the code PINNED-ONE "+words("p", 50))
	in.Pin = true
	if _, err := s.Submit(context.Background(), rec, in); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, n+1)
	ans := h.turn(s, rec, "second", "the code PINNED-TWO "+words("q", 50))
	if _, err := s.Pin(context.Background(), nil, ans.Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pin(context.Background(), nil, 999); !errors.Is(err, ErrNotPinnable) {
		t.Fatalf("pin of a seq past the log: %v, want ErrNotPinnable", err)
	}
	pins := 0
	for _, e := range s.History(0) {
		if e.Kind == KindPin {
			pins++
		}
	}
	if _, err := s.Pin(context.Background(), nil, ans.Seq); err != nil || pins != 1 {
		t.Fatalf("pinning twice: %v, %d pin events", err, pins)
	}
	untilRollup(t, h, s, rec, 0, 1)

	h.turn(s, rec, "last", "which codes?")
	req := h.prov.answerRequests()[len(h.prov.answerRequests())-1]
	var text strings.Builder
	for _, m := range req.Messages {
		text.WriteString(m.Text)
	}
	for _, code := range []string{"PINNED-ONE", "answer the code PINNED-TWO"} {
		if !strings.Contains(text.String(), code) {
			t.Fatalf("the pinned %s is not verbatim in the request after the rollup", code)
		}
	}
	h.noViolations()
}

func TestToolCallsAndResultsAreFoldedTogether(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200),
		Tools: []providers.Tool{{Name: "f"}}})
	for i := 0; len(rollups(s)) < 2; i++ {
		if i > 80 {
			t.Fatalf("no second rollup; %d so far, %d verbatim tokens", len(rollups(s)),
				layout(&s.settings, s.History(0)).foldable)
		}
		ans := h.turn(s, rec, fmt.Sprintf("u%d", i), fmt.Sprintf("tools:%d ", i%3)+
			words(fmt.Sprintf("w%d-", i), 60))
		for len(ans.ToolCalls) > 0 {
			ans = h.results(s, rec, ans, words(fmt.Sprintf("r%d-", i), 80))
		}
		waitFor(t, "background rollups", func() bool { return h.mgr.RollupsRunning() == 0 })
	}
	for _, cp := range rollups(s) {
		for _, e := range s.History(0) {
			if e.Kind == KindToolResult && e.Seq > cp.Rollup.Through {
				call := s.History(0)[0]
				for _, a := range s.History(0) {
					for _, c := range a.ToolCalls {
						if c.ID == e.ToolCallID {
							call = a
						}
					}
				}
				if call.Seq <= cp.Rollup.Through {
					t.Fatalf("rollup through %d folds the call of result %d but not the result",
						cp.Rollup.Through, e.Seq)
				}
			}
		}
	}
	h.noViolations()
}

func TestTurnThatCannotFitIsRefusedBeforeAnythingIsSpent(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	h.cfg.ContextWindows = map[string]int{"claude-sonnet-4-5": 8000}
	h.restart()
	s, rec := h.open(Settings{System: words("sys", 1200), MaxTokens: 1000})
	_, err := s.Submit(context.Background(), rec, userTurn("big", words("x", 7000)))
	if !errors.Is(err, ErrContextOverflow) {
		t.Fatalf("a turn over the window: %v, want ErrContextOverflow", err)
	}
	if len(s.History(0)) != 0 || len(h.prov.answerRequests()) != 0 {
		t.Fatal("the refused turn was stored or sent")
	}
}

func TestTurnThatFitsOnlyOnceFoldedWaitsForTheRollup(t *testing.T) {
	policy := rollupPolicy
	policy.RollupHighTokens = 100000 // the watermark never acts: only the window does
	h := newSavingsHarness(t, policy)
	h.cfg.ContextWindows = map[string]int{"claude-sonnet-4-5": 9000}
	h.restart()
	s, rec := h.open(Settings{System: words("sys", 1200), MaxTokens: 1000})
	for i := 0; len(rollups(s)) == 0; i++ {
		if i > 40 {
			t.Fatal("the window never made a rollup")
		}
		h.turn(s, rec, fmt.Sprintf("u%d", i), words(fmt.Sprintf("w%d-", i), 300))
	}
	ro := rollups(s)[0]
	if ro.Rollup.Reason != "overflow" {
		t.Fatalf("rollup reason %q, want overflow", ro.Rollup.Reason)
	}
	for _, req := range h.prov.answerRequests() {
		p := &prompt{req: req}
		_ = p
		n := settingsTokens(&Settings{System: req.System})
		for _, m := range req.Messages {
			n += providers.CountTokens(m.Text) + messageFraming
		}
		if n+req.MaxTokens > 9000 {
			t.Fatalf("a request of %d tokens and %d for the answer was sent to a "+
				"9000-token model", n, req.MaxTokens)
		}
	}
	h.noViolations()
}

func TestRollupSummaryIsBookedInTheLedger(t *testing.T) {
	h := newSavingsHarness(t, rollupPolicy)
	ledger := finops.NewLedger(storage.NewMemoryKV(), nil)
	h.cfg.Ledger = ledger
	h.restart()
	s, rec := h.open(Settings{System: words("sys", 1200)})
	untilRollup(t, h, s, rec, 0, 1)
	ro := rollups(s)[0]
	e, ok, err := ledger.Entry(context.Background(), s.ID(), ro.Seq, finops.PurposeRollup)
	if err != nil || !ok {
		t.Fatalf("no ledger entry for the rollup at seq %d: %v", ro.Seq, err)
	}
	if e.CostUSD != ro.CostUSD || e.CostUSD <= 0 ||
		e.SavingsUSD[finops.LeverRollup] != -ro.CostUSD || e.Model != testSummaryModel {
		t.Fatalf("entry %+v: want the summary's cost %.6f as a negative rollup saving",
			e, ro.CostUSD)
	}
}
