package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/storage"
)

// newOwnedManager returns a manager of node over store, whose ownership is kept
// in owners.
func newOwnedManager(t *testing.T, store storage.Store, prov *fakeProvider,
	owners *MemoryOwners, node string) *Manager {
	t.Helper()
	mgr, err := NewManager(Config{
		Model: "fake-model", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ownership: owners.Node(node),
	}, store, prov)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.Background()) })
	return mgr
}

// closedWith returns the error of the NoteClosed a recorder got, or nil.
func (r *recorder) closedWith() error {
	for _, n := range r.snapshot() {
		if n.Kind == NoteClosed {
			return n.Err
		}
	}
	return nil
}

func TestSessionOwnedByAnotherNodeIsNotLoaded(t *testing.T) {
	store, prov, owners := storage.NewMemory(), &fakeProvider{}, NewMemoryOwners()
	a := newOwnedManager(t, store, prov, owners, "a")
	b := newOwnedManager(t, store, prov, owners, "b")

	s, err := a.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if got := owners.Owner(s.ID()); got != "a" {
		t.Fatalf("owner after Open = %q, want a", got)
	}
	_, err = b.Get(ctx, "t1", s.ID())
	var owned *OwnedElsewhereError
	if !errors.As(err, &owned) || owned.Node != "a" || !errors.Is(err, ErrOwnedElsewhere) {
		t.Fatalf("Get on the other node = %v, want an OwnedElsewhereError naming a", err)
	}
	if b.LiveSessions() != 0 {
		t.Fatal("the other node holds the session in memory")
	}
	if _, err := b.Get(ctx, "t2", s.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get by another tenant = %v, want ErrNotFound before any ownership", err)
	}
}

// TestDroppedSessionStoresNothingAndMovesToTheNewOwner loses a session in the
// middle of an answer: the answer is cancelled and not stored, the subscriber
// is told to go, and the node that takes the session over answers the turn.
func TestDroppedSessionStoresNothingAndMovesToTheNewOwner(t *testing.T) {
	store, owners := storage.NewMemory(), NewMemoryOwners()
	prov := &fakeProvider{gate: make(chan struct{})}
	a := newOwnedManager(t, store, prov, owners, "a")
	s, err := a.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)
	if _, err := s.Submit(ctx, rec, userTurn("u1", "a long story")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first delta", func() bool { return len(rec.snapshot()) >= 3 })

	owners.Revoke(s.ID())
	if !a.Drop(s.ID(), errors.New("lease lost")) {
		t.Fatal("Drop found no live session")
	}
	if err := rec.closedWith(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("subscriber closed with %v, want ErrNotOwner", err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err) // the cancelled answer has ended
	}
	if recs, _ := store.Read(ctx, s.ID(), 0, 0); len(recs) != 1 {
		t.Fatalf("store holds %d records after the drop, want the turn alone", len(recs))
	}
	if _, err := s.Submit(ctx, rec, userTurn("u2", "more")); !errors.Is(err, ErrNotOwner) &&
		!errors.Is(err, ErrClosed) {
		t.Fatalf("Submit on the dropped session = %v, want a refusal", err)
	}

	close(prov.gate)
	b := newOwnedManager(t, store, prov, owners, "b")
	taken, err := b.Get(ctx, "t1", s.ID())
	if err != nil {
		t.Fatalf("Get on the new owner: %v", err)
	}
	later := &recorder{}
	taken.Subscribe(later, taken.Info().Epoch, 0)
	ans := later.waitAnswers(t, 1)[0]
	if ans.Seq != 2 || ans.Text != "answer a long story" {
		t.Fatalf("answer on the new owner: seq %d %q", ans.Seq, ans.Text)
	}
}

// fencingStore refuses every Append with storage.ErrFenced once fenced is set,
// as the cluster store does after another node fenced the log.
type fencingStore struct {
	storage.Store
	fenced atomic.Bool
}

func (f *fencingStore) Append(ctx context.Context, id string, recs []storage.Record) error {
	if f.fenced.Load() {
		return storage.ErrFenced
	}
	return f.Store.Append(ctx, id, recs)
}

func TestFencedWriteDropsTheSessionAndReleasesIt(t *testing.T) {
	store, owners := &fencingStore{Store: storage.NewMemory()}, NewMemoryOwners()
	a := newOwnedManager(t, store, &fakeProvider{}, owners, "a")
	s, err := a.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)

	store.fenced.Store(true)
	if _, err := s.Submit(ctx, rec, userTurn("u1", "hi")); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("Submit = %v, want ErrFenced", err)
	}
	if err := rec.closedWith(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("subscriber closed with %v, want ErrNotOwner", err)
	}
	waitFor(t, "the session to leave memory", func() bool { return a.LiveSessions() == 0 })
	waitFor(t, "the ownership to be released", func() bool { return owners.Owner(s.ID()) == "" })
}

func TestEvictedSessionIsReleased(t *testing.T) {
	owners := NewMemoryOwners()
	a := newOwnedManager(t, storage.NewMemory(), &fakeProvider{}, owners, "a")
	s, err := a.Open(ctx, "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if n := a.evictIdle(time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("evicted %d sessions, want 1", n)
	}
	if got := owners.Owner(s.ID()); got != "" {
		t.Fatalf("owner after eviction = %q, want none", got)
	}
}
