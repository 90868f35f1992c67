package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stated-dev/stated/storage"
)

// Defaults and bounds of LeaseConfig.
const (
	// DefaultBucket is the key-value bucket of leases when LeaseConfig.Bucket is
	// empty.
	DefaultBucket = "stated_owners"
	// DefaultLeaseTTL is how long a lease lasts without renewal when
	// LeaseConfig.TTL is zero.
	DefaultLeaseTTL = 10 * time.Second
	// MinLeaseTTL and MaxLeaseTTL bound LeaseConfig.TTL.
	MinLeaseTTL = 500 * time.Millisecond
	MaxLeaseTTL = 10 * time.Minute
	// MaxReplicas bounds LeaseConfig.Replicas.
	MaxReplicas = 5
	// MaxNodeLen is the longest node name, in bytes; node names also name the
	// writer in the store's fences.
	MaxNodeLen = storage.MaxOwnerLen
	// MaxBucketLen is the longest bucket name, in bytes.
	MaxBucketLen = 64

	// maxClaimAttempts bounds how often Claim tries again when the key vanishes
	// between its create and its read.
	maxClaimAttempts = 5
	// retryWait is the pause before a renewal tries again.
	retryWait = 20 * time.Millisecond
	// adminTimeout bounds one attempt to create or update the bucket.
	adminTimeout = 5 * time.Second
	// minOpTimeout and maxOpTimeout bound the time one request to NATS may take
	// (a quarter of the TTL), so that a lost answer leaves time to try again.
	minOpTimeout = 250 * time.Millisecond
	maxOpTimeout = 2 * time.Second
)

// LeaseConfig configures NewLeases. Every node of a cluster must use the same
// Bucket, TTL and Replicas: the bucket has one TTL, and the last node to start
// sets it.
type LeaseConfig struct {
	// Bucket names the key-value bucket; empty means DefaultBucket. Letters,
	// digits, '-' and '_', at most MaxBucketLen bytes.
	Bucket string
	// Node is this node's name, unique in the cluster. Required: 1 to MaxNodeLen
	// bytes of printable ASCII without spaces.
	Node string
	// TTL is how long a lease lasts without renewal, MinLeaseTTL to MaxLeaseTTL;
	// zero means DefaultLeaseTTL. A dead owner's sessions wait this long for a
	// takeover.
	TTL time.Duration
	// Replicas is how many servers keep the bucket, 1 to MaxReplicas; zero means
	// 1. Three survive the loss of one server.
	Replicas int
}

// Validate checks the config, zero values standing for their defaults. Its
// errors match ErrInvalidConfig.
func (c LeaseConfig) Validate() error {
	c = c.withDefaults()
	if err := validateBucket(c.Bucket); err != nil {
		return err
	}
	if err := validateNode(c.Node); err != nil {
		return err
	}
	if c.TTL < MinLeaseTTL || c.TTL > MaxLeaseTTL {
		return fmt.Errorf("%w: ttl %s, want %s to %s", ErrInvalidConfig, c.TTL, MinLeaseTTL,
			MaxLeaseTTL)
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: %d replicas, want 1 to %d", ErrInvalidConfig, c.Replicas,
			MaxReplicas)
	}
	return nil
}

func (c LeaseConfig) withDefaults() LeaseConfig {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.TTL == 0 {
		c.TTL = DefaultLeaseTTL
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Lease is a node's ownership of a session.
type Lease struct {
	// Session is the session owned.
	Session string
	// Node is the owner's name.
	Node string
	// Revision is the lease key's revision: it changes with every renewal and
	// grows from one owner to the next.
	Revision uint64
	// Expires is when the lease ends unless renewed. For a lease this node claimed
	// or renewed it is measured on this node's clock from before the request was
	// sent, so the lease never outlives it; for a lease read from the bucket it is
	// the server's write time plus the TTL.
	Expires time.Time
}

// Leases claims, renews and releases this node's session leases in a JetStream
// key-value bucket. It is safe for concurrent use.
type Leases struct {
	kv        jetstream.KeyValue
	node      string
	ttl       time.Duration
	opTimeout time.Duration
}

// NewLeases creates the bucket, or updates its configuration, and returns the
// leases of cfg.Node in it; while the request times out it tries again until
// ctx ends. It returns an error matching ErrInvalidConfig for a config out of
// bounds.
//
// The bucket is a key-value bucket whose stream does not allow direct gets:
// every read of a lease goes to the stream's leader and sees the latest write,
// where a follower could answer from moments behind.
func NewLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig) (*Leases, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	err := createBucket(ctx, js, jetstream.StreamConfig{
		Name:              "KV_" + cfg.Bucket,
		Description:       "stated session owners",
		Subjects:          []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		MaxAge:            cfg.TTL,
		Duplicates:        min(cfg.TTL, 2*time.Minute),
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		Discard:           jetstream.DiscardNew,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       false,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket %s: %w", cfg.Bucket, err)
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("cluster: lease bucket %s: %w", cfg.Bucket, err)
	}
	return &Leases{
		kv:        kv,
		node:      cfg.Node,
		ttl:       cfg.TTL,
		opTimeout: min(max(cfg.TTL/4, minOpTimeout), maxOpTimeout),
	}, nil
}

// createBucket creates or updates the bucket's stream. A cluster that is
// starting, or electing a leader, may drop the request unanswered; since the
// request can be repeated, it is, with a timeout per attempt, until ctx ends.
func createBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, adminTimeout)
		_, err := js.CreateOrUpdateStream(attempt, cfg)
		cancel()
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if err == nil || !timedOut || ctx.Err() != nil {
			return err
		}
	}
}

// Node returns this node's name.
func (l *Leases) Node() string { return l.node }

// TTL returns how long a lease lasts without renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Claim makes this node the session's owner if no node is: it creates the
// session's key, which succeeds only if the key is absent, deleted or expired.
// If this node already owns the session, Claim returns that lease. If another
// node does, it returns an *OwnedError (matching ErrOwned). A claim whose
// answer is lost is settled by reading the key. It returns ErrInvalidSession
// for a bad ID.
func (l *Leases) Claim(ctx context.Context, session string) (Lease, error) {
	key, err := leaseKey(session)
	if err != nil {
		return Lease{}, err
	}
	for range maxClaimAttempts {
		sent := time.Now()
		var rev uint64
		rev, err = l.create(ctx, key)
		if err == nil {
			return Lease{Session: session, Node: l.node, Revision: rev,
				Expires: sent.Add(l.ttl)}, nil
		}
		if ctx.Err() != nil {
			return Lease{}, ctx.Err()
		}

		cur, rerr := l.Owner(ctx, session)
		switch {
		case rerr == nil && cur.Node == l.node && cur.Expires.After(time.Now()):
			return l.ours(cur, sent), nil
		case rerr == nil && cur.Node != l.node:
			return Lease{}, &OwnedError{Session: session, Node: cur.Node, Revision: cur.Revision}
		case rerr != nil && !errors.Is(rerr, ErrNoOwner):
			return Lease{}, fmt.Errorf("cluster: claim: %w", errors.Join(err, rerr))
		}
		// The key vanished (expired or released) between the create and the read,
		// or it is this node's but past its time: try again.
	}
	return Lease{}, fmt.Errorf("cluster: claim: the key kept changing: %w", err)
}

// Renew extends a lease this node holds with a compare-and-swap on its
// revision and returns the lease at its new revision. If the swap fails, or its
// answer is lost, Renew reads the key: if it names this node at a newer
// revision, the renewal went through and Renew returns that; if it names this
// node at the same revision, Renew tries again; otherwise the lease is gone.
//
// Renew keeps trying until the lease expires at the latest. It returns an
// error matching ErrLost if the key is gone or names another node, or if the
// lease expired before a renewal was confirmed; ctx's error if ctx ends first;
// ErrInvalidLease for a lease that is not this node's.
func (l *Leases) Renew(ctx context.Context, lease Lease) (Lease, error) {
	key, err := l.checkLease(lease)
	if err != nil {
		return Lease{}, err
	}
	if !time.Now().Before(lease.Expires) {
		return Lease{}, fmt.Errorf("%w: expired before its renewal", ErrLost)
	}
	untilExpiry, cancel := context.WithDeadline(ctx, lease.Expires)
	defer cancel()

	first := time.Now()
	for {
		sent := time.Now()
		rev, err := l.update(untilExpiry, key, lease.Revision)
		if err == nil {
			lease.Revision, lease.Expires = rev, sent.Add(l.ttl)
			return lease, nil
		}

		next, settled, rerr := l.settleRenewal(untilExpiry, lease, first)
		if settled {
			return next, rerr
		}
		if werr := sleep(untilExpiry, retryWait); werr != nil {
			if ctx.Err() != nil {
				return Lease{}, ctx.Err()
			}
			return Lease{}, fmt.Errorf("%w: not renewed before it expired: %w", ErrLost, err)
		}
	}
}

// settleRenewal reads the key after a failed renewal of lease that began at
// first. It reports settled with the renewed lease or the loss, or not settled
// when the renewal should be tried again.
func (l *Leases) settleRenewal(ctx context.Context, lease Lease,
	first time.Time) (Lease, bool, error) {
	cur, err := l.Owner(ctx, lease.Session)
	switch {
	case errors.Is(err, ErrNoOwner):
		return Lease{}, true, fmt.Errorf("%w: the lease key is gone", ErrLost)
	case err != nil:
		return Lease{}, false, nil
	case cur.Node != l.node:
		return Lease{}, true, fmt.Errorf("%w: node %s took the session over", ErrLost, cur.Node)
	case cur.Revision > lease.Revision:
		return l.ours(cur, first), true, nil
	case cur.Revision < lease.Revision:
		return Lease{}, true, fmt.Errorf("%w: the key is at revision %d, before %d", ErrLost,
			cur.Revision, lease.Revision)
	default:
		return Lease{}, false, nil
	}
}

// Release gives up a lease this node holds, deleting the key only if it is
// still at the lease's revision, so that it never deletes another owner's key.
// A key already gone counts as released. It returns an error matching ErrLost
// if another node owns the session, ErrInvalidLease for a lease that is not
// this node's.
func (l *Leases) Release(ctx context.Context, lease Lease) error {
	key, err := l.checkLease(lease)
	if err != nil {
		return err
	}
	err = l.delete(ctx, key, lease.Revision)
	if err == nil {
		return nil
	}

	cur, rerr := l.Owner(ctx, lease.Session)
	switch {
	case errors.Is(rerr, ErrNoOwner):
		return nil
	case rerr != nil:
		return fmt.Errorf("cluster: release: %w", errors.Join(err, rerr))
	case cur.Node != l.node:
		return fmt.Errorf("%w: node %s owns the session", ErrLost, cur.Node)
	case cur.Revision > lease.Revision:
		// A renewal landed unanswered; what is this node's is still to release.
		return wrap("release", l.delete(ctx, key, cur.Revision))
	default:
		return fmt.Errorf("cluster: release: %w", err)
	}
}

// Owner returns the lease of whichever node owns the session, read from the
// bucket's leader, or ErrNoOwner. Its Expires is the owner's last write plus
// the TTL, on the server's clock.
func (l *Leases) Owner(ctx context.Context, session string) (Lease, error) {
	key, err := leaseKey(session)
	if err != nil {
		return Lease{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Lease{}, ErrNoOwner
	case err != nil:
		return Lease{}, fmt.Errorf("cluster: read lease: %w", err)
	}
	return Lease{Session: session, Node: string(e.Value()), Revision: e.Revision(),
		Expires: e.Created().Add(l.ttl)}, nil
}

// ours returns cur, a lease of this node read from the bucket, with an expiry
// no later than the TTL after sent (when this node's request that may have
// written it left) on this node's clock.
func (l *Leases) ours(cur Lease, sent time.Time) Lease {
	if bySent := sent.Add(l.ttl); bySent.Before(cur.Expires) {
		cur.Expires = bySent
	}
	return cur
}

// create, update and delete are the bucket's writes, each bounded by opTimeout.

func (l *Leases) create(ctx context.Context, key string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	return l.kv.Create(ctx, key, []byte(l.node))
}

func (l *Leases) update(ctx context.Context, key string, revision uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	return l.kv.Update(ctx, key, []byte(l.node), revision)
}

func (l *Leases) delete(ctx context.Context, key string, revision uint64) error {
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	return l.kv.Delete(ctx, key, jetstream.LastRevision(revision))
}

// checkLease returns the key of a lease this node may renew or release.
func (l *Leases) checkLease(lease Lease) (string, error) {
	if lease.Node != l.node {
		return "", fmt.Errorf("%w: held by node %q, this is %q", ErrInvalidLease, lease.Node,
			l.node)
	}
	if lease.Revision == 0 {
		return "", fmt.Errorf("%w: revision 0", ErrInvalidLease)
	}
	return leaseKey(lease.Session)
}

// leaseKey returns the bucket key of a session: its ID in unpadded base64url,
// since IDs may hold bytes that keys may not.
func leaseKey(session string) (string, error) {
	if session == "" || len(session) > storage.MaxIDLen {
		return "", fmt.Errorf("%w: %d bytes, want 1 to %d", ErrInvalidSession, len(session),
			storage.MaxIDLen)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(session)), nil
}

// validateNode checks a node name: 1 to MaxNodeLen bytes of printable ASCII
// without spaces, as the store's fences require of owners.
func validateNode(node string) error {
	if node == "" || len(node) > MaxNodeLen {
		return fmt.Errorf("%w: node name of %d bytes, want 1 to %d", ErrInvalidConfig,
			len(node), MaxNodeLen)
	}
	for i := 0; i < len(node); i++ {
		if node[i] <= ' ' || node[i] > '~' {
			return fmt.Errorf("%w: byte %#x in node name", ErrInvalidConfig, node[i])
		}
	}
	return nil
}

// validateBucket checks a bucket name: letters, digits, '-' and '_'.
func validateBucket(bucket string) error {
	if len(bucket) > MaxBucketLen {
		return fmt.Errorf("%w: bucket name of %d bytes, limit %d", ErrInvalidConfig,
			len(bucket), MaxBucketLen)
	}
	for i := 0; i < len(bucket); i++ {
		c := bucket[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("%w: byte %#x in bucket name", ErrInvalidConfig, c)
		}
	}
	return nil
}

// sleep waits for d or until ctx ends, and then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrap marks an error with the operation; nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cluster: %s: %w", op, err)
}
