package finops

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/storage"
)

// newBudgets returns budgets over a fresh ledger whose clock is at.
func newBudgets(t *testing.T, kv storage.KV, at time.Time) (*Budgets, *Ledger) {
	t.Helper()
	l := NewLedger(kv, nil)
	b := NewBudgets(kv, l, nil)
	b.now = func() time.Time { return at }
	return b, l
}

func setLimits(t *testing.T, b *Budgets, tenant string, limits ...Limit) {
	t.Helper()
	if err := b.SetLimits(ctx, tenant, limits); err != nil {
		t.Fatal(err)
	}
}

func TestEightParallelClaimsWithRoomForTwoAdmitTwo(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		b, _ := newBudgets(t, kv, day0)
		worst := Cost{USD: 0.4, Tokens: 1000}
		setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 1.0})

		var admitted, refused atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := b.Reserve(ctx, Claim{Tenant: "acme", Session: sessionName(i),
					Options: []Cost{worst}})
				switch {
				case err == nil:
					admitted.Add(1)
				case errors.Is(err, ErrBudgetExceeded):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if admitted.Load() != 2 || refused.Load() != 6 {
			t.Fatalf("admitted %d and refused %d, want 2 and 6", admitted.Load(), refused.Load())
		}
		if c := b.Counters()["acme"]; c.Refused != 6 {
			t.Fatalf("refusals counted %d, want 6", c.Refused)
		}
	})
}

func sessionName(i int) string { return "s" + string(rune('a'+i)) }

func TestReleaseGivesRoomBackAndSpendingTakesItFromTheLedger(t *testing.T) {
	b, l := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 1.0})
	claim := Claim{Tenant: "acme", Session: "s1", Options: []Cost{{USD: 0.6}}}

	r, err := b.Reserve(ctx, claim)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, claim); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("a second claim while the first is held = %v", err)
	}
	// The call cost 0.5: booked, then the reservation released.
	e := entry("acme", "s1", 2, 0, 0.5)
	if err := l.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	r.Release()
	r.Release() // a second release gives nothing back twice
	if _, err := b.Reserve(ctx, claim); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("0.5 spent + 0.6 fit under 1.0: %v", err)
	}
	small := Claim{Tenant: "acme", Session: "s1", Options: []Cost{{USD: 0.5}}}
	if _, err := b.Reserve(ctx, small); err != nil {
		t.Fatalf("0.5 spent + 0.5 must fit under 1.0: %v", err)
	}
}

func TestSpendingIsLoadedFromTheLedgerAfterARestart(t *testing.T) {
	dir := t.TempDir()
	kv := openBadgerKV(t, dir)
	first, l := newBudgets(t, kv, day0)
	setLimits(t, first, "acme",
		Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 1.0},
		Limit{Scope: ScopeTenant, Window: WindowTotal, HardUSD: 1.5})
	for i, cost := range []float64{0.3, 0.3} {
		if err := l.Record(ctx, entry("acme", "s1", uint64(2*i+2), i, cost)); err != nil {
			t.Fatal(err)
		}
	}
	// Yesterday's entry counts in the total only.
	if err := l.Record(ctx, entry("acme", "s0", 2, -60*24, 0.7)); err != nil {
		t.Fatal(err)
	}

	again, _ := newBudgets(t, kv, day0.Add(time.Hour))
	st, err := again.Standings(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	assertUSD(t, "spent today", st[0].SpentUSD, 0.6)
	assertUSD(t, "spent in total", st[1].SpentUSD, 1.3)
	_, err = again.Reserve(ctx, Claim{Tenant: "acme", Session: "s1",
		Options: []Cost{{USD: 0.3}}})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit.Window != WindowTotal {
		t.Fatalf("a claim past the total = %v, want the total limit's LimitError", err)
	}
}

func TestADayWindowStartsAfreshAtMidnightUTC(t *testing.T) {
	b, l := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 1.0})
	if err := l.Record(ctx, entry("acme", "s1", 2, 0, 0.9)); err != nil {
		t.Fatal(err)
	}
	claim := Claim{Tenant: "acme", Session: "s1", Options: []Cost{{USD: 0.2}}}
	if _, err := b.Reserve(ctx, claim); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("same day: %v", err)
	}
	b.now = func() time.Time { return day0.Add(14 * time.Hour) } // 00:00 UTC the next day
	if _, err := b.Reserve(ctx, claim); err != nil {
		t.Fatalf("the next day: %v", err)
	}
}

func TestASoftCapPicksTheDegradedOption(t *testing.T) {
	b, _ := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme",
		Limit{Scope: ScopeTenant, Window: WindowMonth, SoftUSD: 0.5, HardUSD: 1.0})
	options := []Cost{{USD: 0.4}, {USD: 0.1}}
	tests := []struct {
		name   string
		choice int
		soft   bool
	}{
		{"under the soft cap the preferred option", 0, false},
		// 0.4 held: 0.4 more passes 0.5, 0.1 does not.
		{"past the soft cap the option that fits it", 1, true},
		// 0.5 held: nothing fits under 0.5; the last option fits under 1.0.
		{"with no option under the soft cap the last one", 1, true},
	}
	for _, tt := range tests {
		r, err := b.Reserve(ctx, Claim{Tenant: "acme", Session: "s1", Options: options})
		if err != nil || r.Choice != tt.choice || r.Soft != tt.soft {
			t.Fatalf("%s: choice %v, %v", tt.name, r, err)
		}
	}
	if c := b.Counters()["acme"]; c.Degraded != 2 {
		t.Fatalf("degraded counted %d, want 2", c.Degraded)
	}
}

func TestTokenCapsAndSessionScopes(t *testing.T) {
	b, l := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme", Limit{Scope: ScopeSession, Window: WindowTotal, HardTokens: 1000})
	claim := func(session string, tokens int64, own ...Limit) error {
		_, err := b.Reserve(ctx, Claim{Tenant: "acme", Session: session, SessionLimits: own,
			Options: []Cost{{Tokens: tokens}}})
		return err
	}
	if err := claim("s1", 900); err != nil {
		t.Fatal(err)
	}
	if err := claim("s1", 200); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("s1 past its token cap: %v", err)
	}
	if err := claim("s2", 900); err != nil {
		t.Fatalf("each session has its own cap: %v", err)
	}
	own := Limit{Scope: ScopeSession, Window: WindowTotal, HardTokens: 100}
	if err := claim("s3", 200, own); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("a session's own limit: %v", err)
	}
	// Spending of one session does not count against another.
	e := entry("acme", "s4", 2, 0, 0)
	e.Tokens = Tokens{Input: 950}
	if err := l.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := claim("s4", 100); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("s4 spent 950 of 1000: %v", err)
	}
	if err := claim("s5", 100); err != nil {
		t.Fatal(err)
	}
}

func TestNoLimitsAdmitsEverything(t *testing.T) {
	b, _ := newBudgets(t, storage.NewMemoryKV(), day0)
	r, err := b.Reserve(ctx, Claim{Tenant: "acme", Session: "s1",
		Options: []Cost{{USD: 1e9}}})
	if err != nil || r.Limited || r.Choice != 0 {
		t.Fatalf("Reserve without limits = %+v, %v", r, err)
	}
	r.Release()
}

func TestLimitsAreValidated(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
	}{
		{"an unknown scope", Limit{Scope: "org", Window: WindowDay, HardUSD: 1}},
		{"an unknown window", Limit{Scope: ScopeTenant, Window: "week", HardUSD: 1}},
		{"no cap", Limit{Scope: ScopeTenant, Window: WindowDay}},
		{"a negative cap", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: -1}},
		{"a soft cap above the hard one", Limit{Scope: ScopeTenant, Window: WindowDay,
			HardUSD: 1, SoftUSD: 2}},
		{"a soft token cap at the hard one", Limit{Scope: ScopeTenant, Window: WindowDay,
			HardTokens: 10, SoftTokens: 10}},
	}
	b, _ := newBudgets(t, storage.NewMemoryKV(), day0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.SetLimits(ctx, "acme", []Limit{tt.limit}); !errors.Is(err,
				ErrInvalidLimit) {
				t.Fatalf("SetLimits = %v, want ErrInvalidLimit", err)
			}
		})
	}
}

func TestLimitsSurviveARestart(t *testing.T) {
	kv := storage.NewMemoryKV()
	b, _ := newBudgets(t, kv, day0)
	want := Limit{Scope: ScopeTenant, Window: WindowMonth, HardUSD: 25, SoftUSD: 20}
	setLimits(t, b, "acme", want)
	again, _ := newBudgets(t, kv, day0)
	got, err := again.Limits(ctx, "acme")
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("limits after restart %v, %v", got, err)
	}
}

func TestAHardCapAloneNeverDegrades(t *testing.T) {
	b, _ := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 0.5})
	// The own form does not fit; the cheaper one would, but no soft cap asks for it.
	_, err := b.Reserve(ctx, Claim{Tenant: "acme", Session: "s1",
		Options: []Cost{{USD: 0.6}, {USD: 0.1}}})
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("Reserve = %v, want ErrBudgetExceeded", err)
	}
}

func TestUpgradesAreTakenOnlyUnderEveryCap(t *testing.T) {
	b, _ := newBudgets(t, storage.NewMemoryKV(), day0)
	setLimits(t, b, "acme",
		Limit{Scope: ScopeTenant, Window: WindowDay, SoftUSD: 0.5, HardUSD: 1.0})
	claim := Claim{Tenant: "acme", Session: "s1", Normal: 1,
		Options: []Cost{{USD: 0.6}, {USD: 0.3}, {USD: 0.1}}}
	r, err := b.Reserve(ctx, claim)
	if err != nil || r.Choice != 1 || r.Soft {
		t.Fatalf("an upgrade past the soft cap: %+v, %v; want the own form", r, err)
	}
	// 0.3 held: the own form passes the soft cap, the degradation does not.
	r, err = b.Reserve(ctx, claim)
	if err != nil || r.Choice != 2 || !r.Soft {
		t.Fatalf("past the soft cap: %+v, %v; want the degradation", r, err)
	}
}

// Regression: a model missing from the price table was reserved and booked at
// nothing, so it passed any USD cap.
func TestAnUnpricedModelIsRefusedWhereAUSDCapApplies(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		b, _ := newBudgets(t, kv, day0)
		unpriced := Claim{Tenant: "acme", Session: "s1",
			Options: []Cost{{Tokens: 100, Unpriced: true}}}
		setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardTokens: 1000})
		if _, err := b.Reserve(ctx, unpriced); err != nil {
			t.Fatalf("a token cap alone refused an unpriced model: %v", err)
		}
		setLimits(t, b, "acme", Limit{Scope: ScopeTenant, Window: WindowDay, HardUSD: 1})
		if _, err := b.Reserve(ctx, unpriced); !errors.Is(err, ErrBudgetExceeded) {
			t.Fatalf("under a USD cap an unpriced model got %v, want ErrBudgetExceeded", err)
		}
	})
}
