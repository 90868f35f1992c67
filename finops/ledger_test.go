package finops

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/storage"
)

var ctx = context.Background()

// eachKV runs f over a real Badger KV (which writes an entry atomically) and the
// in-memory KV of tests (which does not).
func eachKV(t *testing.T, f func(t *testing.T, kv storage.KV)) {
	t.Run("badger", func(t *testing.T) {
		f(t, openBadgerKV(t, t.TempDir()))
	})
	t.Run("memory", func(t *testing.T) {
		f(t, storage.NewMemoryKV())
	})
}

func openBadgerKV(t *testing.T, dir string) *storage.BadgerKV {
	t.Helper()
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	kv, err := store.KV()
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

var day0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// entry returns a turn entry of tenant's session at seq, at minute min of day0.
func entry(tenant, session string, seq uint64, min int, cost float64) Entry {
	return Entry{
		Tenant: tenant, Session: session, Seq: seq, Purpose: PurposeTurn,
		Time: day0.Add(time.Duration(min) * time.Minute), Model: "claude-sonnet-4-5",
		Tokens: Tokens{Input: 10, CacheRead: 90, Output: 5},
		Booking: Booking{CostUSD: cost, NaiveCostUSD: 2 * cost,
			SavingsUSD: map[Lever]float64{LeverCaching: cost}},
	}
}

func TestLedgerRecordsEachCallOnce(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		l := NewLedger(kv, nil)
		var mu sync.Mutex
		var seen []Entry
		l.Observe(func(e Entry) { mu.Lock(); seen = append(seen, e); mu.Unlock() })

		e := entry("acme", "s1", 2, 0, 0.01)
		if err := l.MarkPending(ctx, PendingCall{Tenant: "acme", Session: "s1", Seq: 2}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := l.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		changed := e
		changed.CostUSD = 99
		if err := l.Record(ctx, changed); err != nil {
			t.Fatal(err)
		}

		if len(seen) != 1 {
			t.Fatalf("observers saw %d entries, want 1", len(seen))
		}
		r, err := l.Report(ctx, Query{Tenant: "acme"}, GroupNone)
		if err != nil {
			t.Fatal(err)
		}
		if r.Total.Calls != 1 || r.Total.CostUSD != 0.01 {
			t.Fatalf("report %+v: want one call of 0.01", r.Total)
		}
		if p, err := l.Pending(ctx); err != nil || len(p) != 0 {
			t.Fatalf("pending marks after the record: %v, %v", p, err)
		}
	})
}

func TestLedgerPendingMarksListUnbookedCalls(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		l := NewLedger(kv, nil)
		for _, p := range []PendingCall{{Tenant: "acme", Session: "s2", Seq: 4},
			{Tenant: "acme", Session: "s1", Seq: 10}, {Tenant: "beta", Session: "s1", Seq: 2}} {
			if err := l.MarkPending(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Record(ctx, entry("acme", "s1", 10, 0, 0.01)); err != nil {
			t.Fatal(err)
		}
		if err := l.ClearPending(ctx, "s2", 4); err != nil {
			t.Fatal(err)
		}
		got, err := l.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[{beta s1 2}]" {
			t.Fatalf("pending %v, want only beta's s1 at 2", got)
		}
	})
}

func TestLedgerRefusesInvalidEntries(t *testing.T) {
	l := NewLedger(storage.NewMemoryKV(), nil)
	good := entry("acme", "s1", 1, 0, 0.01)
	tests := []struct {
		name string
		edit func(e *Entry)
	}{
		{"a tenant with a slash", func(e *Entry) { e.Tenant = "a/b" }},
		{"an upper-case tenant", func(e *Entry) { e.Tenant = "Acme" }},
		{"no session", func(e *Entry) { e.Session = "" }},
		{"a session with a slash", func(e *Entry) { e.Session = "s/1" }},
		{"seq 0", func(e *Entry) { e.Seq = 0 }},
		{"no purpose", func(e *Entry) { e.Purpose = "" }},
		{"no time", func(e *Entry) { e.Time = time.Time{} }},
		{"a negative cost", func(e *Entry) { e.CostUSD = -1 }},
		{"a negative token count", func(e *Entry) { e.Tokens.Output = -1 }},
		{"a lever with a slash", func(e *Entry) { e.SavingsUSD = map[Lever]float64{"a/b": 1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			tt.edit(&e)
			if err := l.Record(ctx, e); !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("Record = %v, want ErrInvalidEntry", err)
			}
		})
	}
}

// seedLedger books entries of two tenants over two days and three models.
func seedLedger(t *testing.T, l *Ledger) {
	t.Helper()
	entries := []Entry{
		entry("acme", "s1", 2, 0, 0.010),
		entry("acme", "s1", 4, 5, 0.020),
		entry("acme", "s2", 2, 60*24, 0.040), // the next day
		entry("beta", "s3", 2, 1, 0.500),
	}
	entries[1].Model = "claude-haiku-4-5"
	entries[1].Estimated = true
	entries[2].Model = "gpt-4.1"
	for _, e := range entries {
		if err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLedgerReportsGroupAndScope(t *testing.T) {
	eachKV(t, func(t *testing.T, kv storage.KV) {
		l := NewLedger(kv, nil)
		seedLedger(t, l)
		tests := []struct {
			name   string
			q      Query
			by     GroupBy
			calls  int64
			cost   float64
			groups string
		}{
			{"a tenant by model, costliest first", Query{Tenant: "acme"}, GroupModel, 3, 0.07,
				"gpt-4.1:1 claude-haiku-4-5:1 claude-sonnet-4-5:1"},
			{"a tenant by day", Query{Tenant: "acme"}, GroupDay, 3, 0.07,
				"2026-12-04:2 2026-12-05:1"},
			{"a tenant by session", Query{Tenant: "acme"}, GroupSession, 3, 0.07, "s2:1 s1:2"},
			{"a time range keeps from and drops to", Query{Tenant: "acme",
				From: day0.Add(5 * time.Minute), To: day0.Add(24 * time.Hour)}, GroupNone, 1,
				0.02, ""},
			{"one session", Query{Session: "s1"}, GroupNone, 2, 0.03, ""},
			{"another tenant's session is empty", Query{Tenant: "beta", Session: "s1"},
				GroupNone, 0, 0, ""},
			{"every tenant by tenant", Query{}, GroupTenant, 4, 0.57, "beta:1 acme:3"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r, err := l.Report(ctx, tt.q, tt.by)
				if err != nil {
					t.Fatal(err)
				}
				if r.Total.Calls != tt.calls {
					t.Fatalf("%d calls, want %d", r.Total.Calls, tt.calls)
				}
				assertUSD(t, "cost", r.Total.CostUSD, tt.cost)
				assertUSD(t, "naive", r.Total.NaiveCostUSD, 2*tt.cost)
				assertUSD(t, "caching", r.Total.SavingsUSD[LeverCaching], tt.cost)
				var groups []string
				for _, g := range r.Groups {
					groups = append(groups, fmt.Sprintf("%s:%d", g.Key, g.Calls))
				}
				if strings.Join(groups, " ") != tt.groups {
					t.Fatalf("groups %v, want %s", groups, tt.groups)
				}
			})
		}
	})
}

func TestLedgerReportCountsTokensAndEstimates(t *testing.T) {
	l := NewLedger(storage.NewMemoryKV(), nil)
	seedLedger(t, l)
	r, err := l.Report(ctx, Query{Tenant: "acme"}, GroupNone)
	if err != nil {
		t.Fatal(err)
	}
	tt := r.Total
	if tt.InputTokens != 30 || tt.CacheReadTokens != 270 || tt.OutputTokens != 15 ||
		tt.EstimatedCalls != 1 {
		t.Fatalf("totals %+v", tt)
	}
	if tt.CacheReadShare != 0.9 {
		t.Fatalf("cache read share %g, want 0.9", tt.CacheReadShare)
	}
}

func TestLedgerReportWritesCSV(t *testing.T) {
	l := NewLedger(storage.NewMemoryKV(), nil)
	seedLedger(t, l)
	r, err := l.Report(ctx, Query{Tenant: "acme"}, GroupModel)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || rows[0][0] != "kind" || rows[4][0] != "total" {
		t.Fatalf("csv rows %v: want a header, three groups and the total", rows)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	if rows[4][col["cost_usd"]] != "0.07" || rows[1][col["key"]] != "gpt-4.1" ||
		rows[4][col["savings_usd_caching"]] != "0.07" || rows[4][col["calls"]] != "3" {
		t.Fatalf("csv %v", rows)
	}
}

func TestLedgerRefusesBadQueries(t *testing.T) {
	l := NewLedger(storage.NewMemoryKV(), nil)
	if _, err := l.Report(ctx, Query{}, "week"); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("an unknown grouping = %v", err)
	}
	if _, err := l.Report(ctx, Query{From: day0, To: day0.Add(-time.Hour)},
		GroupNone); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("a range that ends before it starts = %v", err)
	}
}

func TestLedgerSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	func() {
		store, err := storage.OpenBadger(storage.DefaultBadgerOptions(dir))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		kv, err := store.KV()
		if err != nil {
			t.Fatal(err)
		}
		seedLedger(t, NewLedger(kv, nil))
	}()
	l := NewLedger(openBadgerKV(t, dir), nil)
	r, err := l.Report(ctx, Query{}, GroupNone)
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Calls != 4 {
		t.Fatalf("%d calls after reopening, want 4", r.Total.Calls)
	}
}
