package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stated-dev/stated/internal/natstest"
)

// loss is one report of a Keeper's onLost.
type loss struct {
	lease Lease
	err   error
	at    time.Time
}

// newTestKeeper starts a Keeper of l whose losses arrive on the returned
// channel; it is closed when the test ends.
func newTestKeeper(t *testing.T, l *Leases) (*Keeper, <-chan loss) {
	t.Helper()
	lost := make(chan loss, 16)
	k := NewKeeper(l, func(lease Lease, err error) {
		lost <- loss{lease: lease, err: err, at: time.Now()}
	})
	t.Cleanup(k.Close)
	return k, lost
}

func mustClaimAndHold(t *testing.T, l *Leases, k *Keeper, session string) Lease {
	t.Helper()
	lease, err := l.Claim(context.Background(), session)
	if err != nil {
		t.Fatalf("Claim(%q): %v", session, err)
	}
	if err := k.Hold(lease); err != nil {
		t.Fatalf("Hold(%q): %v", session, err)
	}
	return lease
}

// TestKeeperKeepsLeasesPastTheTTL holds a lease for three TTLs, during which
// another node's claims keep failing.
func TestKeeperKeepsLeasesPastTheTTL(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", testTTL)
	b := newTestLeases(t, c, "b", testTTL)
	k, lost := newTestKeeper(t, a)
	first := mustClaimAndHold(t, a, k, "s1")

	end := time.Now().Add(3 * testTTL)
	for time.Now().Before(end) {
		if _, err := b.Claim(context.Background(), "s1"); !errors.Is(err, ErrOwned) {
			t.Fatalf("Claim by another node while the lease is kept = %v, want ErrOwned", err)
		}
		select {
		case l := <-lost:
			t.Fatalf("lease reported lost: %v", l.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	kept, ok := k.Lease("s1")
	if !ok || kept.Revision <= first.Revision || !kept.Expires.After(time.Now()) {
		t.Fatalf("Lease = %+v, %t; want a renewed, unexpired lease", kept, ok)
	}
}

// TestKeeperReportsTakeoverWithinTheTTL takes a kept lease over behind the
// keeper's back; the keeper must report it before a TTL has passed.
func TestKeeperReportsTakeoverWithinTheTTL(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", testTTL)
	b := newTestLeases(t, c, "b", testTTL)
	k, lost := newTestKeeper(t, a)
	lease := mustClaimAndHold(t, a, k, "s1")
	mustClaimAndHold(t, a, k, "s2")

	// An operator deletes the key; node b claims the session at once.
	key, _ := leaseKey(lease.Session)
	if err := b.kv.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	taken, err := b.Claim(context.Background(), "s1")
	if err != nil {
		t.Fatalf("Claim by b after the delete: %v", err)
	}
	takenAt := time.Now()

	select {
	case l := <-lost:
		if !errors.Is(l.err, ErrLost) || l.lease.Session != "s1" || l.lease.Node != "a" {
			t.Fatalf("reported %+v, %v; want a's lease of s1 and ErrLost", l.lease, l.err)
		}
		if d := l.at.Sub(takenAt); d >= testTTL {
			t.Fatalf("loss reported %s after the takeover, want within %s", d, testTTL)
		}
	case <-time.After(2 * testTTL):
		t.Fatal("no loss reported")
	}

	if _, ok := k.Lease("s1"); ok {
		t.Error("the keeper still holds the lost lease")
	}
	if _, ok := k.Lease("s2"); !ok {
		t.Error("the keeper dropped the other lease")
	}
	if err := k.Release(context.Background(), "s1"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Release of the lost lease = %v, want ErrNotHeld", err)
	}
	assertOwned(t, a, "s1", "b", taken.Revision)
}

// TestKeeperReportsLossWhenNATSIsGone kills the only server: renewals cannot
// be confirmed, and the keeper must report the loss no later than the lease's
// own expiry.
func TestKeeperReportsLossWhenNATSIsGone(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", testTTL)
	k, lost := newTestKeeper(t, a)
	mustClaimAndHold(t, a, k, "s1")

	c.Kill(0)
	last, ok := k.Lease("s1")
	if !ok {
		t.Fatal("lease not held")
	}
	select {
	case l := <-lost:
		if !errors.Is(l.err, ErrLost) {
			t.Fatalf("reported %v, want ErrLost", l.err)
		}
		// The lease may have been renewed once more between Kill and Lease.
		if late := l.at.Sub(last.Expires); late > 100*time.Millisecond {
			t.Fatalf("loss reported %s after the lease expired", late)
		}
	case <-time.After(3 * testTTL):
		t.Fatal("no loss reported")
	}
}

func TestKeeperReleaseAllFreesEverySession(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", DefaultLeaseTTL)
	b := newTestLeases(t, c, "b", DefaultLeaseTTL)
	k, _ := newTestKeeper(t, a)
	sessions := []string{"s1", "s2", "s3"}
	for _, s := range sessions {
		mustClaimAndHold(t, a, k, s)
	}

	if err := k.ReleaseAll(context.Background()); err != nil {
		t.Fatalf("ReleaseAll: %v", err)
	}
	for _, s := range sessions {
		if _, err := b.Claim(context.Background(), s); err != nil {
			t.Errorf("Claim(%s) after ReleaseAll: %v", s, err)
		}
		if _, ok := k.Lease(s); ok {
			t.Errorf("the keeper still holds %s", s)
		}
	}
}

func TestKeeperRefusesForeignLeasesAndClosedHolds(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", DefaultLeaseTTL)
	b := newTestLeases(t, c, "b", DefaultLeaseTTL)
	k, _ := newTestKeeper(t, a)
	foreign, err := b.Claim(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Hold(foreign); !errors.Is(err, ErrInvalidLease) {
		t.Errorf("Hold of another node's lease = %v, want ErrInvalidLease", err)
	}

	own, err := a.Claim(context.Background(), "s2")
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	k.Close()
	if err := k.Hold(own); !errors.Is(err, ErrKeeperClosed) {
		t.Errorf("Hold after Close = %v, want ErrKeeperClosed", err)
	}
}
