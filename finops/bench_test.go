package finops

import (
	"fmt"
	"testing"
	"time"

	"github.com/stated-dev/stated/storage"
)

// BenchmarkLedgerRecord books entries on a real Badger directory with synced
// writes: one transaction per entry, the cost an answer pays after it is stored.
func BenchmarkLedgerRecord(b *testing.B) {
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	kv, err := store.KV()
	if err != nil {
		b.Fatal(err)
	}
	l := NewLedger(kv, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := l.Record(ctx, entry("acme", "s1", uint64(i+1), i%1000, 0.001)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserve admits and releases a call against a tenant and a session
// limit whose windows are loaded: the cost budgets add before a provider call.
func BenchmarkReserve(b *testing.B) {
	l := NewLedger(storage.NewMemoryKV(), nil)
	bu := NewBudgets(storage.NewMemoryKV(), l, nil)
	bu.SetLimits(ctx, "acme", []Limit{
		{Scope: ScopeTenant, Window: WindowMonth, HardUSD: 1e9},
		{Scope: ScopeSession, Window: WindowTotal, HardUSD: 1e9}})
	claim := Claim{Tenant: "acme", Session: "s1", Options: []Cost{{USD: 0.01, Tokens: 5000}}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, err := bu.Reserve(ctx, claim)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}

// BenchmarkReport sums a tenant's 10,000 entries by model, from Badger.
func BenchmarkReport(b *testing.B) {
	store, err := storage.OpenBadger(storage.BadgerOptions{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	kv, err := store.KV()
	if err != nil {
		b.Fatal(err)
	}
	l := NewLedger(kv, nil)
	for i := range 10000 {
		e := entry("acme", fmt.Sprint("s", i%100), uint64(i+1), i%(60*24*28), 0.001)
		e.Time = day0.Add(time.Duration(i) * time.Minute)
		if err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := l.Report(ctx, Query{Tenant: "acme"}, GroupModel); err != nil {
			b.Fatal(err)
		}
	}
}
