package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// finopsHarness is a harness whose manager books a ledger and admits answers
// against budgets, all over in-memory stores.
type finopsHarness struct {
	*harness
	kv      *storage.MemoryKV
	ledger  *finops.Ledger
	budgets *finops.Budgets
	guard   Guard
}

// fakeCost prices the fake provider's usage: a cache read costs a tenth of input.
func fakeCost(model string, u providers.Usage) (float64, error) {
	return (float64(u.InputTokens+u.CacheWriteTokens()+u.OutputTokens) +
		0.1*float64(u.CacheReadTokens)) * 1e-6, nil
}

func newFinopsHarness(t *testing.T, guard Guard) *finopsHarness {
	t.Helper()
	h := &finopsHarness{harness: &harness{t: t, store: storage.NewMemory(),
		prov: &fakeProvider{}}, kv: storage.NewMemoryKV(), guard: guard}
	h.restartFinops()
	return h
}

// restartFinops replaces the manager, ledger and budgets over the same stores, as
// a process restart would.
func (h *finopsHarness) restartFinops() {
	h.t.Helper()
	if h.mgr != nil {
		h.mgr.Close(context.Background())
	}
	h.ledger = finops.NewLedger(h.kv, nil)
	h.budgets = finops.NewBudgets(h.kv, h.ledger, nil)
	mgr, err := NewManager(Config{
		Model: "fake-model", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Cost: fakeCost, Ledger: h.ledger, Budgets: h.budgets, Guard: h.guard,
	}, h.store, h.prov)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mgr = mgr
	h.t.Cleanup(func() { mgr.Close(context.Background()) })
}

func (h *finopsHarness) limit(limits ...finops.Limit) {
	h.t.Helper()
	if err := h.budgets.SetLimits(ctx, "t1", limits); err != nil {
		h.t.Fatal(err)
	}
}

func (h *finopsHarness) entries(session string) []finops.Entry {
	h.t.Helper()
	var out []finops.Entry
	err := h.ledger.Scan(ctx, finops.Query{Session: session}, func(e finops.Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func TestEveryAnswerIsBookedWithWhatAStatelessClientWouldHavePaid(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	s, rec := h.open(Settings{})
	for i, id := range []string{"u1", "u2"} {
		if _, err := s.Submit(ctx, rec, userTurn(id, "hello "+id)); err != nil {
			t.Fatal(err)
		}
		rec.waitAnswers(t, i+1)
		waitFor(t, "the ledger entry", func() bool { return len(h.entries(s.ID())) >= 1 })
	}
	waitFor(t, "two entries", func() bool { return len(h.entries(s.ID())) == 2 })

	answers := rec.answers()
	for i, e := range h.entries(s.ID()) {
		ans := answers[i]
		// The fake reports input 10, cache read 90, output 5: 24e-6 at fakeCost,
		// and 105e-6 for a client paying the whole prompt as input.
		if e.Seq != ans.Seq || e.Tenant != "t1" || e.Purpose != finops.PurposeTurn ||
			e.Tokens != (finops.Tokens{Input: 10, CacheRead: 90, Output: 5}) {
			t.Fatalf("entry %d: %+v, answer %+v", i, e, ans)
		}
		assertClose(t, "cost", e.CostUSD, 24e-6)
		assertClose(t, "naive cost", e.NaiveCostUSD, 105e-6)
		assertClose(t, "answer's naive cost", ans.NaiveCostUSD, 105e-6)
		assertClose(t, "caching saving", e.SavingsUSD[finops.LeverCaching], 81e-6)
		if e.Status != "complete" || e.LatencyMS <= 0 {
			t.Fatalf("entry %d: status %q latency %g", i, e.Status, e.LatencyMS)
		}
	}
	if p, _ := h.ledger.Pending(ctx); len(p) != 0 {
		t.Fatalf("pending marks left: %v", p)
	}
}

func assertClose(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("%s = %.15g, want %.15g", what, got, want)
	}
}

func TestAHardLimitRefusesBeforeAnyProviderCall(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	// The worst case of a turn is its prompt and 4096 tokens of output: over 0.004.
	h.limit(finops.Limit{Scope: finops.ScopeTenant, Window: finops.WindowDay, HardUSD: 0.001})
	s, rec := h.open(Settings{})
	stored, err := s.Submit(ctx, rec, userTurn("u1", "hello"))
	if !errors.Is(err, finops.ErrBudgetExceeded) {
		t.Fatalf("Submit = %v, want ErrBudgetExceeded", err)
	}
	if stored == nil || stored.Seq != 1 {
		t.Fatalf("the turn was not stored before the refusal: %+v", stored)
	}
	if h.prov.calls() != 0 {
		t.Fatalf("the provider was called %d times", h.prov.calls())
	}
	ans := rec.answers()
	if len(ans) != 1 || ans[0].Status != StatusFailed || ans[0].ErrorCode != CodeBudgetExceeded {
		t.Fatalf("answers %+v: want one failed with %s", ans, CodeBudgetExceeded)
	}
	if err := s.Retry(ctx); !errors.Is(err, finops.ErrBudgetExceeded) {
		t.Fatalf("Retry = %v", err)
	}
	if n := len(s.History(0)); n != 2 {
		t.Fatalf("a refused retry stored another event: %d events", n)
	}
	if len(h.entries(s.ID())) != 0 {
		t.Fatal("a refused answer was booked")
	}
}

func TestASoftLimitAnswersWithTheEconomyModelAndSaysSo(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	s, rec := h.open(Settings{Cost: &CostPolicy{
		EconomyModel: "fake-small", SoftMaxTokens: 100,
		Limits: []finops.Limit{{Scope: finops.ScopeSession, Window: finops.WindowTotal,
			SoftUSD: 0.002, HardUSD: 0.01}},
	}})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "hello")); err != nil {
		t.Fatal(err)
	}
	ans := rec.waitAnswers(t, 1)[0]
	req := h.prov.lastRequest()
	if req.Model != "fake-small" || req.MaxTokens != 100 || ans.Model != "fake-small" {
		t.Fatalf("request %s/%d, answer by %s: want fake-small with 100 tokens", req.Model,
			req.MaxTokens, ans.Model)
	}
	want := BudgetNote{Reason: "soft_limit", RequestedModel: "fake-model",
		RequestedMaxTokens: 4096, MaxTokens: 100}
	if ans.Budget == nil || *ans.Budget != want {
		t.Fatalf("budget note %+v, want %+v", ans.Budget, want)
	}
}

func TestATurnsValueChoosesTheModel(t *testing.T) {
	policy := &CostPolicy{EconomyModel: "fake-small", PremiumModel: "fake-large"}
	tests := []struct {
		name     string
		value    float64
		priority string
		model    string
		reason   string
	}{
		{"no declared value gets the session's model", 0, "", "fake-model", ""},
		// The premium call may cost up to (prompt + 4096) * 1e-6, about 0.0041:
		// a value of ten times that buys it.
		{"a value worth ten times the premium call buys it", 0.05, "", "fake-large", "value"},
		{"a value below ten times does not", 0.02, "", "fake-model", ""},
		{"high priority buys the premium model", 0, PriorityHigh, "fake-large", "value"},
		{"low priority takes the economy model", 0, PriorityLow, "fake-small", "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFinopsHarness(t, Guard{})
			s, rec := h.open(Settings{Cost: policy})
			in := userTurn("u1", "hello")
			in.ValueUSD, in.Priority = tt.value, tt.priority
			if _, err := s.Submit(ctx, rec, in); err != nil {
				t.Fatal(err)
			}
			ans := rec.waitAnswers(t, 1)[0]
			if ans.Model != tt.model {
				t.Fatalf("answered by %s, want %s", ans.Model, tt.model)
			}
			if got := ""; ans.Budget != nil {
				got = ans.Budget.Reason
				if got != tt.reason {
					t.Fatalf("note reason %q, want %q", got, tt.reason)
				}
			} else if tt.reason != "" {
				t.Fatalf("no budget note, want reason %q", tt.reason)
			}
		})
	}
}

func TestPolicyAndValueAreValidated(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	bad := []*CostPolicy{
		{SoftMaxTokens: -1},
		{PremiumValueRatio: -2},
		{Limits: []finops.Limit{{Scope: finops.ScopeTenant, Window: finops.WindowDay,
			HardUSD: 1}}},
		{Limits: []finops.Limit{{Scope: finops.ScopeSession, Window: "week", HardUSD: 1}}},
	}
	for _, p := range bad {
		if _, err := h.mgr.Open(ctx, "t1", Settings{Cost: p}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open with policy %+v = %v, want ErrInvalid", p, err)
		}
	}
	s, rec := h.open(Settings{})
	for _, in := range []Input{
		{Kind: KindUser, TurnID: "a", Text: "x", ValueUSD: -1},
		{Kind: KindUser, TurnID: "b", Text: "x", ValueUSD: math.NaN()},
		{Kind: KindUser, TurnID: "c", Text: "x", Priority: "urgent"},
	} {
		if _, err := s.Submit(ctx, rec, in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Submit(%+v) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestEightParallelTurnsWithRoomForTwoAdmitTwo(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	gate := make(chan struct{})
	h.prov.gate = gate
	defer close(gate)

	var sessions []*Session
	var recs []*recorder
	for range 8 {
		s, rec := h.open(Settings{MaxTokens: 1000})
		sessions, recs = append(sessions, s), append(recs, rec)
	}
	// Each worst case is (prompt + 1000) * 1e-6, a little over 0.001.
	h.limit(finops.Limit{Scope: finops.ScopeTenant, Window: finops.WindowDay, HardUSD: 0.0025})

	var admitted, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.Submit(ctx, recs[i], userTurn("u1", "the same question"))
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, finops.ErrBudgetExceeded):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 2 || refused.Load() != 6 {
		t.Fatalf("admitted %d, refused %d: want 2 and 6", admitted.Load(), refused.Load())
	}
	waitFor(t, "two provider calls", func() bool { return h.prov.calls() == 2 })
}

func TestRecoverLedgerBooksAnAnswerStoredButNotBooked(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	s, rec := h.open(Settings{})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "hello")); err != nil {
		t.Fatal(err)
	}
	ans := rec.waitAnswers(t, 1)[0]
	waitFor(t, "the entry", func() bool { return len(h.entries(s.ID())) == 1 })
	booked := h.entries(s.ID())[0]

	// A crash between the answer's append and its booking: the entry is missing
	// and the pending mark is still there. A mark for an answer never stored,
	// and a mark of a session that does not exist, are cleared.
	wipeLedger(t, h.kv)
	for _, p := range []finops.PendingCall{
		{Tenant: "t1", Session: s.ID(), Seq: ans.Seq},
		{Tenant: "t1", Session: s.ID(), Seq: 9},
		{Tenant: "t1", Session: "gone", Seq: 2},
	} {
		if err := h.ledger.MarkPending(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	h.restartFinops()
	n, err := h.mgr.RecoverLedger(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverLedger = %d, %v; want 1 booked", n, err)
	}
	got := h.entries(s.ID())
	if len(got) != 1 || got[0].CostUSD != booked.CostUSD || got[0].Seq != booked.Seq ||
		got[0].NaiveCostUSD != booked.NaiveCostUSD || !got[0].Time.Equal(booked.Time) {
		t.Fatalf("recovered %+v, booked before %+v", got, booked)
	}
	if p, _ := h.ledger.Pending(ctx); len(p) != 0 {
		t.Fatalf("marks left: %v", p)
	}
	if n, _ := h.mgr.RecoverLedger(ctx); n != 0 {
		t.Fatalf("a second recovery booked %d", n)
	}
}

// wipeLedger removes every ledger key, as if the entries had never been written.
func wipeLedger(t *testing.T, kv storage.KV) {
	t.Helper()
	all, err := kv.List(ctx, "ledger/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		kv.Delete(ctx, e.Key)
	}
}

func TestAnotherTenantCannotGetOrLearnOfASession(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	s, _ := h.open(Settings{})
	if _, err := h.mgr.Get(ctx, "t2", s.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a live session by another tenant = %v", err)
	}
	h.restartFinops()
	if _, err := h.mgr.Get(ctx, "t2", s.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a stored session by another tenant = %v", err)
	}
	if owner, err := h.mgr.Owner(ctx, s.ID()); err != nil || owner != "t1" {
		t.Fatalf("Owner = %q, %v", owner, err)
	}
	if _, err := h.mgr.Owner(ctx, "nosuchsession"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Owner of nothing = %v", err)
	}
	if _, err := h.mgr.Get(ctx, "t1", s.ID()); err != nil {
		t.Fatalf("the owner cannot get it: %v", err)
	}
}

func TestAClientThatLeavesMidAnswerIsBilled(t *testing.T) {
	h := newFinopsHarness(t, Guard{})
	gate := make(chan struct{})
	h.prov.gate = gate
	s, rec := h.open(Settings{})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "tell me a long story please")); err != nil {
		t.Fatal(err)
	}
	s.Unsubscribe(rec)
	close(gate)
	waitFor(t, "the booked answer", func() bool { return len(h.entries(s.ID())) == 1 })
	if e := h.entries(s.ID())[0]; e.Status != "complete" || e.Tokens.Output != 5 {
		t.Fatalf("entry %+v: want the whole answer billed", e)
	}
}
