package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stated-dev/stated/internal/natstest"
)

// testTTL is short so that expiry tests take about a second.
const testTTL = time.Second

// newTestJetStream connects to c with a connection of its own.
func newTestJetStream(t *testing.T, c *natstest.Cluster) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newTestLeases returns the leases of node on c, through a connection of its
// own, as a node of its own would have.
func newTestLeases(t *testing.T, c *natstest.Cluster, node string, ttl time.Duration) *Leases {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := NewLeases(ctx, newTestJetStream(t, c), LeaseConfig{Node: node, TTL: ttl})
	if err != nil {
		t.Fatalf("NewLeases(%s): %v", node, err)
	}
	return l
}

func TestLeaseConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  LeaseConfig
		ok   bool
	}{
		{"a node name alone takes the defaults", LeaseConfig{Node: "n1"}, true},
		{"every field set within bounds", LeaseConfig{Bucket: "owners-2", Node: "n1.example",
			TTL: MaxLeaseTTL, Replicas: MaxReplicas}, true},
		{"no node name", LeaseConfig{}, false},
		{"a node name with a space", LeaseConfig{Node: "node 1"}, false},
		{"a node name over the limit", LeaseConfig{Node: strings.Repeat("n", MaxNodeLen+1)}, false},
		{"a bucket name with a dot", LeaseConfig{Bucket: "a.b", Node: "n1"}, false},
		{"a bucket name over the limit",
			LeaseConfig{Bucket: strings.Repeat("b", MaxBucketLen+1), Node: "n1"}, false},
		{"a ttl under the minimum", LeaseConfig{Node: "n1", TTL: MinLeaseTTL - 1}, false},
		{"a ttl over the maximum", LeaseConfig{Node: "n1", TTL: MaxLeaseTTL + 1}, false},
		{"a negative ttl", LeaseConfig{Node: "n1", TTL: -time.Second}, false},
		{"too many replicas", LeaseConfig{Node: "n1", Replicas: MaxReplicas + 1}, false},
		{"negative replicas", LeaseConfig{Node: "n1", Replicas: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestLeaseLifecycle walks one session through claims, renewals and releases by
// two nodes; each step relies on the ones before it.
func TestLeaseLifecycle(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", DefaultLeaseTTL)
	b := newTestLeases(t, c, "b", DefaultLeaseTTL)
	ctx := context.Background()
	const session = "s1"

	before := time.Now()
	lease, err := a.Claim(ctx, session)
	if err != nil {
		t.Fatalf("first Claim: %v", err)
	}
	if lease.Node != "a" || lease.Revision == 0 ||
		lease.Expires.Before(before.Add(DefaultLeaseTTL)) {
		t.Fatalf("first Claim = %+v, want node a, a revision, expiry a TTL from now", lease)
	}

	again, err := a.Claim(ctx, session)
	if err != nil || again.Revision != lease.Revision || again.Node != "a" {
		t.Fatalf("Claim by the owner = %+v, %v; want its lease at revision %d", again, err,
			lease.Revision)
	}
	assertOwned(t, b, session, "a", lease.Revision)

	renewed, err := a.Renew(ctx, lease)
	if err != nil || renewed.Revision <= lease.Revision || renewed.Node != "a" {
		t.Fatalf("Renew = %+v, %v; want a newer revision than %d", renewed, err, lease.Revision)
	}
	assertOwned(t, b, session, "a", renewed.Revision)

	// A renewal whose answer was lost is retried with the old lease: the key
	// names this node at a newer revision, so the retry takes it.
	retried, err := a.Renew(ctx, lease)
	if err != nil || retried.Revision != renewed.Revision {
		t.Fatalf("Renew of the previous revision = %+v, %v; want revision %d", retried, err,
			renewed.Revision)
	}

	if _, err := b.Renew(ctx, renewed); !errors.Is(err, ErrInvalidLease) {
		t.Fatalf("Renew of another node's lease = %v, want ErrInvalidLease", err)
	}
	if err := b.Release(ctx, renewed); !errors.Is(err, ErrInvalidLease) {
		t.Fatalf("Release of another node's lease = %v, want ErrInvalidLease", err)
	}

	if err := a.Release(ctx, renewed); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := a.Owner(ctx, session); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Owner after Release = %v, want ErrNoOwner", err)
	}
	taken, err := b.Claim(ctx, session)
	if err != nil || taken.Node != "b" || taken.Revision <= renewed.Revision {
		t.Fatalf("Claim after Release = %+v, %v; want node b at a newer revision", taken, err)
	}

	if _, err := a.Renew(ctx, renewed); !errors.Is(err, ErrLost) {
		t.Fatalf("Renew after the session was taken = %v, want ErrLost", err)
	}
	if err := a.Release(ctx, renewed); !errors.Is(err, ErrLost) {
		t.Fatalf("Release after the session was taken = %v, want ErrLost", err)
	}
	assertOwned(t, a, session, "b", taken.Revision)
}

func TestLeaseRefusesBadSessionIDs(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", DefaultLeaseTTL)
	for _, id := range []string{"", strings.Repeat("x", 257)} {
		if _, err := a.Claim(context.Background(), id); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("Claim of a %d-byte ID = %v, want ErrInvalidSession", len(id), err)
		}
	}
	// IDs are opaque bytes: dots, spaces and NULs are fine.
	if _, err := a.Claim(context.Background(), "a.b c\x00>"); err != nil {
		t.Errorf("Claim of an ID with odd bytes: %v", err)
	}
}

// TestExpiryThenTakeover lets a lease run out: another node's claim fails until
// the lease's own expiry has passed, then succeeds, and the old owner's renewal
// fails with ErrLost.
func TestExpiryThenTakeover(t *testing.T) {
	c := natstest.StartServer(t)
	a := newTestLeases(t, c, "a", testTTL)
	b := newTestLeases(t, c, "b", testTTL)
	ctx := context.Background()

	lease, err := a.Claim(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	taken := claimEventually(t, b, "s1", 5*testTTL)
	if now := time.Now(); now.Before(lease.Expires) {
		t.Fatalf("taken over %s before the lease expired", lease.Expires.Sub(now))
	}
	if taken.Revision <= lease.Revision {
		t.Fatalf("takeover at revision %d, not after %d", taken.Revision, lease.Revision)
	}

	if _, err := a.Renew(ctx, lease); !errors.Is(err, ErrLost) {
		t.Fatalf("Renew after the takeover = %v, want ErrLost", err)
	}
	if _, err := a.Claim(ctx, "s1"); !errors.Is(err, ErrOwned) {
		t.Fatalf("Claim after the takeover = %v, want ErrOwned", err)
	}
}

// TestTwoNodesRacingNeverBothOwn races two nodes for one session, round after
// round: both claim at once, the loser checks it was refused in favor of the
// winner, and the winner releases. Every write to the bucket gets the next
// revision, so a round with exactly one claim and one release advances the
// revision by exactly two; a second owner would have taken a revision of its
// own.
func TestTwoNodesRacingNeverBothOwn(t *testing.T) {
	const rounds = 1000
	c := natstest.StartServer(t)
	nodes := []*Leases{
		newTestLeases(t, c, "a", DefaultLeaseTTL),
		newTestLeases(t, c, "b", DefaultLeaseTTL),
	}
	ctx := context.Background()
	base := bucketRevision(t, nodes[0])

	wins := map[string]int{}
	for round := range uint64(rounds) {
		w, winner, loser := race(t, nodes, "contested")
		var owned *OwnedError
		if !errors.As(loser, &owned) || owned.Node != winner.Node ||
			owned.Revision != winner.Revision {
			t.Fatalf("round %d: the loser got %v, want the winner %s at revision %d", round,
				loser, winner.Node, winner.Revision)
		}
		if want := base + 2*round + 1; winner.Revision != want {
			t.Fatalf("round %d: claimed at revision %d, want %d: another write came between",
				round, winner.Revision, want)
		}
		if err := nodes[w].Release(ctx, winner); err != nil {
			t.Fatalf("round %d: Release: %v", round, err)
		}
		wins[winner.Node]++
	}

	if got, want := bucketRevision(t, nodes[0]), base+2*rounds; got != want {
		t.Fatalf("bucket at revision %d after %d rounds, want %d", got, rounds, want)
	}
	t.Logf("wins: %v", wins)
}

// race has both nodes claim the session at once. It returns the index of the
// one that won, its lease, and the other's error; it fails the test unless
// exactly one won.
func race(t *testing.T, nodes []*Leases, session string) (int, Lease, error) {
	t.Helper()
	var leases [2]Lease
	var errs [2]error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, l := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			leases[i], errs[i] = l.Claim(context.Background(), session)
		}()
	}
	close(start)
	wg.Wait()

	w := 0
	if errs[0] != nil {
		w = 1
	}
	if errs[w] != nil || errs[1-w] == nil {
		t.Fatalf("claims returned %v and %v, want exactly one owner", errs[0], errs[1])
	}
	return w, leases[w], errs[1-w]
}

// claimEventually claims the session for l until it succeeds, failing the test
// if the session stays owned for longer than within.
func claimEventually(t *testing.T, l *Leases, session string, within time.Duration) Lease {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		lease, err := l.Claim(context.Background(), session)
		if err == nil {
			return lease
		}
		if !errors.Is(err, ErrOwned) || time.Now().After(deadline) {
			t.Fatalf("Claim(%q) by %s: %v", session, l.Node(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertOwned checks that l's claim of the session is refused in favor of node
// at revision.
func assertOwned(t *testing.T, l *Leases, session, node string, revision uint64) {
	t.Helper()
	_, err := l.Claim(context.Background(), session)
	var owned *OwnedError
	if !errors.As(err, &owned) || !errors.Is(err, ErrOwned) {
		t.Fatalf("Claim by %s = %v, want an OwnedError", l.Node(), err)
	}
	if owned.Node != node || owned.Revision != revision || owned.Session != session {
		t.Fatalf("Claim by %s refused for %+v, want node %s at revision %d", l.Node(), owned,
			node, revision)
	}
}

// bucketRevision returns the last revision written to l's bucket.
func bucketRevision(t *testing.T, l *Leases) uint64 {
	t.Helper()
	status, err := l.kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return status.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}
