package session

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// fakeStampingProvider is a fakeProvider for unit tests whose deltas carry the
// time they were handed over as their read time (Delta.At). Before its first
// delta it waits for before, when set; stamped holds the At of each delta.
type fakeStampingProvider struct {
	*fakeProvider
	before func()

	mu      sync.Mutex
	stamped []time.Time
}

func (f *fakeStampingProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	f.mu.Lock()
	before := f.before
	f.mu.Unlock()
	if before != nil {
		before()
	}
	return f.fakeProvider.Complete(ctx, req, func(d providers.Delta) {
		d.At = time.Now()
		f.mu.Lock()
		f.stamped = append(f.stamped, d.At)
		f.mu.Unlock()
		onDelta(d)
	})
}

func (f *fakeStampingProvider) firstStamps(n int) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.stamped[:min(n, len(f.stamped))]...)
}

// commitWaits collects what Config.ObserveCommitWait receives.
type commitWaits struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *commitWaits) observe(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
}

func (c *commitWaits) snapshot() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// newCommitWaitManager returns a manager over a fakeHookStore and a
// fakeStampingProvider that reports commit waits to waits.
func newCommitWaitManager(t *testing.T, waits *commitWaits) (*Manager, *fakeHookStore,
	*fakeStampingProvider) {
	t.Helper()
	store := &fakeHookStore{Store: storage.NewMemory()}
	prov := &fakeStampingProvider{fakeProvider: &fakeProvider{}}
	mgr, err := NewManager(Config{
		Model: "fake-model", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Cost: fakeCost, ObserveCommitWait: waits.observe,
	}, store, prov)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.Background()) })
	return mgr, store, prov
}

func TestADeltaReadBeforeItsTurnWasDurableCountsItsWait(t *testing.T) {
	waits := &commitWaits{}
	mgr, store, prov := newCommitWaitManager(t, waits)
	s, err := mgr.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)

	// The append of the turn waits until the answer's first delta has been read:
	// that delta waits for the append.
	var held time.Time
	store.onAppend(func(recs []storage.Record) error {
		if recs[0].Seq == 1 {
			waitFor(t, "the first delta", func() bool { return len(prov.firstStamps(1)) == 1 })
			held = time.Now()
		}
		return nil
	})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "say three words")); err != nil {
		t.Fatal(err)
	}
	store.onAppend(nil)
	rec.waitAnswers(t, 1)
	first := prov.firstStamps(1)[0]
	got := waits.snapshot()
	if len(got) == 0 {
		t.Fatal("no commit wait observed for a delta read before its turn was durable")
	}
	if low, high := held.Sub(first), time.Since(first); got[0] < low || got[0] > high {
		t.Fatalf("first commit wait %v, want between %v and %v", got[0], low, high)
	}
	// The delta was ready to relay when the turn was durable, not when it was read.
	d := firstIndex(rec.snapshot(), func(n Note) bool { return n.Kind == NoteDelta })
	if n := rec.snapshot()[d]; n.Ready.Before(held) || n.Ready.Sub(n.Delta.At) != got[0] {
		t.Fatalf("first delta read at %v ready at %v, want the durable append's end, %v "+
			"after it", n.Delta.At, n.Ready, got[0])
	}
}

func TestDeltasReadAfterTheirTurnWasDurableCountNoWait(t *testing.T) {
	waits := &commitWaits{}
	mgr, _, prov := newCommitWaitManager(t, waits)
	s, err := mgr.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)

	// The answers start streaming only once their turn is acknowledged, which is
	// after it is durable.
	acked := func(seq uint64) func() {
		return func() {
			waitFor(t, "the ack", func() bool {
				return firstIndex(rec.snapshot(), func(n Note) bool {
					return n.Kind == NoteAck && n.Event.Seq == seq
				}) >= 0
			})
		}
	}
	for i, turn := range []string{"u1", "u2"} {
		prov.mu.Lock()
		prov.before = acked(uint64(2*i + 1))
		prov.mu.Unlock()
		if _, err := s.Submit(ctx, rec, userTurn(turn, "say three words")); err != nil {
			t.Fatal(err)
		}
		rec.waitAnswers(t, i+1)
	}
	if got := waits.snapshot(); len(got) != 0 {
		t.Fatalf("commit waits %v observed for deltas read after their turn was durable", got)
	}
	for _, n := range rec.snapshot() {
		if n.Kind == NoteDelta && !n.Ready.Equal(n.Delta.At) {
			t.Fatalf("a delta read at %v is ready at %v; want when it was read", n.Delta.At,
				n.Ready)
		}
	}
}
