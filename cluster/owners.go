package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stated-dev/stated/storage"
)

// Fencer is the part of the cluster store that ownership drives:
// storage.JetStream implements it.
type Fencer interface {
	// Fence makes owner, at lease revision revision, the only writer of the
	// session's log (storage.JetStream.Fence).
	Fence(ctx context.Context, id, owner string, revision uint64) error
	// Disown stops this node's writes to the session's log from carrying its
	// ownership, so they fail once another owner has fenced the log.
	Disown(id string)
}

var _ Fencer = (*storage.JetStream)(nil)

// Owners makes this node the owner of the sessions it serves and keeps them
// so: Acquire claims a session's lease, fences its log with the lease's
// revision and hands the lease to a Keeper that renews it; Release gives it
// up. When a lease is lost, Owners disowns the session's log at once (so no
// further write of this node lands) and then calls onLost. It is safe for
// concurrent use.
type Owners struct {
	leases *Leases
	keeper *Keeper
	store  Fencer
	log    *slog.Logger
	onLost func(session string, err error)
}

// NewOwners returns the owners of leases' node over store. onLost is called,
// once per lost lease, after the session's log is disowned; the node must stop
// serving the session at once. It runs on the Keeper's goroutines and must not
// block. Close stops the renewals.
func NewOwners(leases *Leases, store Fencer, log *slog.Logger,
	onLost func(session string, err error)) *Owners {
	if log == nil {
		log = slog.Default()
	}
	o := &Owners{leases: leases, store: store, log: log, onLost: onLost}
	o.keeper = NewKeeper(leases, o.lost)
	return o
}

// Node returns this node's name.
func (o *Owners) Node() string { return o.leases.Node() }

// Acquire makes this node the owner of the existing session id: it claims the
// lease, keeps it renewed, and fences the log with its revision, so that once
// Acquire returns no other node's write lands in the log. Read the log after
// it. It returns an *OwnedError (matching ErrOwned) when another node holds
// the lease, an error matching storage.ErrFenced when a newer owner fenced the
// log in between, storage.ErrNotFound for a session that does not exist, or
// another error when NATS did not answer; in every failure it holds nothing.
func (o *Owners) Acquire(ctx context.Context, id string) error {
	lease, err := o.leases.Claim(ctx, id)
	if err != nil {
		return err
	}
	if err := o.keeper.Hold(lease); err != nil {
		o.releaseLease(lease)
		return err
	}
	if err := o.store.Fence(ctx, id, lease.Node, lease.Revision); err != nil {
		o.Release(context.WithoutCancel(ctx), id)
		return fmt.Errorf("cluster: fence %s: %w", id, err)
	}
	return nil
}

// Release gives up the session's lease, if this node holds it, and disowns its
// log, so that another node can take the session over at once. A failure is
// logged: the lease then runs out after its TTL.
func (o *Owners) Release(ctx context.Context, id string) {
	o.store.Disown(id)
	err := o.keeper.Release(ctx, id)
	if err != nil && !errors.Is(err, ErrNotHeld) && !errors.Is(err, ErrLost) {
		o.log.Warn("lease not released; it runs out by itself", "session", id, "err", err)
	}
}

// ReleaseAll releases every lease this node holds, as a node that shuts down
// does once its answers are stored, so that other nodes take its sessions over
// without waiting for the TTL. It returns the failures joined.
func (o *Owners) ReleaseAll(ctx context.Context) error {
	for _, id := range o.keeper.sessions() {
		o.store.Disown(id)
	}
	return o.keeper.ReleaseAll(ctx)
}

// Held reports whether this node holds the session's lease.
func (o *Owners) Held(id string) bool {
	_, ok := o.keeper.Lease(id)
	return ok
}

// Close stops renewing. Leases not released run out after the TTL. It is safe
// to call more than once.
func (o *Owners) Close() { o.keeper.Close() }

// lost is the Keeper's report of a lost lease.
func (o *Owners) lost(lease Lease, err error) {
	o.store.Disown(lease.Session)
	o.log.Warn("lease lost", "session", lease.Session, "revision", lease.Revision, "err", err)
	if o.onLost != nil {
		o.onLost(lease.Session, err)
	}
}

// releaseLease releases a lease the Keeper does not hold.
func (o *Owners) releaseLease(lease Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), o.leases.opTimeout)
	defer cancel()
	if err := o.leases.Release(ctx, lease); err != nil {
		o.log.Warn("lease not released; it runs out by itself", "session", lease.Session,
			"err", err)
	}
}
