package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stated-dev/stated/internal/natstest"
	"github.com/stated-dev/stated/storage"
)

// ownersNode is a node's store and Owners, with its reports of lost sessions.
type ownersNode struct {
	node
	owners *Owners
	lost   chan string
}

func newOwnersNode(t *testing.T, c *natstest.Cluster, name string) ownersNode {
	t.Helper()
	n := ownersNode{node: newTestNode(t, c, name), lost: make(chan string, 16)}
	n.owners = NewOwners(n.leases, n.store, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(session string, err error) { n.lost <- session })
	t.Cleanup(n.owners.Close)
	return n
}

func TestOwnersHandOverASessionOnRelease(t *testing.T) {
	c := natstest.StartServer(t)
	a, b := newOwnersNode(t, c, "a"), newOwnersNode(t, c, "b")
	ctx := context.Background()
	const session = "s1"

	if err := a.owners.Acquire(ctx, session); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Acquire of a session that does not exist = %v, want ErrNotFound", err)
	}
	if a.owners.Held(session) {
		t.Fatal("a failed Acquire left the lease held")
	}
	if err := a.store.Create(ctx, storage.Meta{ID: session, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := a.owners.Acquire(ctx, session); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	var owned *OwnedError
	if err := b.owners.Acquire(ctx, session); !errors.As(err, &owned) || owned.Node != "a" {
		t.Fatalf("Acquire by another node = %v, want an OwnedError naming a", err)
	}

	a.owners.Release(ctx, session)
	if err := b.owners.Acquire(ctx, session); err != nil {
		t.Fatalf("Acquire after the release: %v", err)
	}
	late := []storage.Record{{Seq: 1, Data: []byte("write of the node that let go")}}
	if err := a.store.Append(ctx, session, late); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("Append by the former owner = %v, want ErrFenced", err)
	}
	if err := b.store.Append(ctx, session, late); err != nil {
		t.Fatalf("Append by the owner: %v", err)
	}
}

// TestOwnersDisownALostSessionBeforeReportingIt takes a session's lease away
// behind the owner's back: the owner must report the loss within the TTL, and
// by then its writes to the log must already fail.
func TestOwnersDisownALostSessionBeforeReportingIt(t *testing.T) {
	c := natstest.StartServer(t)
	a := newOwnersNode(t, c, "a")
	ctx := context.Background()
	const session = "s1"
	if err := a.store.Create(ctx, storage.Meta{ID: session, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := a.owners.Acquire(ctx, session); err != nil {
		t.Fatal(err)
	}
	key, _ := leaseKey(session)
	if err := a.leases.kv.Purge(ctx, key); err != nil {
		t.Fatal(err)
	}

	select {
	case got := <-a.lost:
		if got != session {
			t.Fatalf("lost %q, want %q", got, session)
		}
	case <-time.After(2 * testTTL):
		t.Fatal("the lost lease was not reported within two TTLs")
	}
	rec := []storage.Record{{Seq: 1, Data: []byte("write after the loss")}}
	if err := a.store.Append(ctx, session, rec); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("Append after the loss = %v, want ErrFenced", err)
	}
}
