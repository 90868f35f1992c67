package session

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stated-dev/stated/storage"
)

// BenchmarkResumeCold loads a 200-turn session that is not in memory, as a
// client's resume after eviction or a restart does: read the log from a synced
// Badger directory, rebuild the session and subscribe. Each iteration evicts the
// session first. It reports p50 and p99 of the loads in ms besides ns/op.
//
//	go test ./session -run '^$' -bench BenchmarkResumeCold -benchtime 500x
func BenchmarkResumeCold(b *testing.B) {
	const turns = 200
	corpus := loadBenchCorpus(b)
	c := benchCase{api: "anthropic", rollup: true, h: turns}
	base := benchBaseFor(b, c, corpus)
	st, err := storage.OpenBadger(storage.BadgerOptions{Dir: b.TempDir(),
		SyncWrites: true, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rig := newBenchRig(b, c, corpus, st)
	s, sub := rig.copyOf(b, base, turns)
	id, events := s.ID(), s.Info().LastSeq
	s.Unsubscribe(sub)

	ctx := context.Background()
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if n := rig.mgr.evictIdle(time.Now().Add(time.Hour)); n != 1 {
			b.Fatalf("evicted %d sessions, want 1", n)
		}
		b.StartTimer()
		start := time.Now()
		s, err := rig.mgr.Get(ctx, base.meta.Tenant, id)
		if err != nil {
			b.Fatal(err)
		}
		sub := newBenchSubscriber()
		s.Subscribe(sub, s.Info().Epoch, s.Info().LastSeq)
		took = append(took, time.Since(start))
		b.StopTimer()
		if got := s.Info().LastSeq; got != events {
			b.Fatalf("loaded %d events, want %d", got, events)
		}
		s.Unsubscribe(sub)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[min(len(took)-1, len(took)*99/100)]), "p99-ms")
}
