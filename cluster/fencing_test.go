package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/stated-dev/stated/internal/natstest"
	"github.com/stated-dev/stated/storage"
)

// node is what a cluster node holds for these tests: its leases and its store.
type node struct {
	leases *Leases
	store  *storage.JetStream
}

func newTestNode(t *testing.T, c *natstest.Cluster, name string) node {
	t.Helper()
	js := newTestJetStream(t, c)
	store, err := storage.OpenJetStream(context.Background(), js, storage.JetStreamOptions{})
	if err != nil {
		t.Fatalf("OpenJetStream: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return node{leases: newTestLeases(t, c, name, testTTL), store: store}
}

// claimAndFence does what a node does when it takes a session: claim it, fence
// its log with the lease's revision, and read the log.
func (n node) claimAndFence(t *testing.T, session string) (Lease, []storage.Record) {
	t.Helper()
	ctx := context.Background()
	lease := claimEventually(t, n.leases, session, 5*testTTL)
	if err := n.store.Fence(ctx, session, lease.Node, lease.Revision); err != nil {
		t.Fatalf("Fence by %s: %v", lease.Node, err)
	}
	recs, err := n.store.Read(ctx, session, 0, 0)
	if err != nil {
		t.Fatalf("Read by %s: %v", lease.Node, err)
	}
	return lease, recs
}

// TestStaleOwnerCannotWriteAfterTakeover lets an owner stall past its lease:
// another node takes the session over, fences the log and reads it, and the
// stalled owner's next write is refused, so the log the new owner read stays
// the log.
func TestStaleOwnerCannotWriteAfterTakeover(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestNode(t, c, "a")
	b := newTestNode(t, c, "b")
	ctx := context.Background()
	const session = "s1"

	if err := a.store.Create(ctx, storage.Meta{ID: session, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	_, recs := a.claimAndFence(t, session)
	if len(recs) != 0 {
		t.Fatalf("new session has %d records", len(recs))
	}
	turn := []storage.Record{{Seq: 1, Data: []byte("user turn")}}
	if err := a.store.Append(ctx, session, turn); err != nil {
		t.Fatalf("Append by the owner: %v", err)
	}

	// a stalls: nothing renews its lease, and b takes the session over once it
	// expires.
	taken, recs := b.claimAndFence(t, session)
	if taken.Node != "b" || len(recs) != 1 {
		t.Fatalf("takeover = %+v with %d records, want node b and 1 record", taken, len(recs))
	}

	stale := []storage.Record{{Seq: 2, Data: []byte("answer from the stalled owner")}}
	if err := a.store.Append(ctx, session, stale); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("Append by the stalled owner = %v, want ErrFenced", err)
	}
	answer := []storage.Record{{Seq: 2, Data: []byte("answer from the new owner")}}
	if err := b.store.Append(ctx, session, answer); err != nil {
		t.Fatalf("Append by the new owner: %v", err)
	}
	late := []storage.Record{{Seq: 3, Data: []byte("late answer from the stalled owner")}}
	if err := a.store.Append(ctx, session, late); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("Append by the stalled owner after the new owner wrote = %v, want ErrFenced",
			err)
	}

	recs, err := a.store.Read(ctx, session, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || string(recs[1].Data) != "answer from the new owner" {
		t.Fatalf("log has %d records, want the owner's turn and the new owner's answer",
			len(recs))
	}
}
