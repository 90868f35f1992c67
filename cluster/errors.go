package cluster

import (
	"errors"
	"fmt"
)

var (
	// ErrOwned means another node owns the session. Claim returns it as an
	// *OwnedError, which names the owner.
	ErrOwned = errors.New("cluster: session owned by another node")
	// ErrLost means a lease is no longer this node's: it expired, was released,
	// or another node took the session over. The node must stop writing and
	// streaming for the session at once; only a new Claim can make it the owner
	// again.
	ErrLost = errors.New("cluster: lease lost")
	// ErrNoOwner means no node owns the session.
	ErrNoOwner = errors.New("cluster: session has no owner")
	// ErrNotHeld means a Keeper does not hold a lease for the session: it never
	// did, it released it, or the lease was lost.
	ErrNotHeld = errors.New("cluster: lease not held")
	// ErrKeeperClosed means the Keeper has been closed.
	ErrKeeperClosed = errors.New("cluster: keeper closed")
	// ErrInvalidSession means a session ID is empty or longer than
	// storage.MaxIDLen bytes.
	ErrInvalidSession = errors.New("cluster: invalid session id")
	// ErrInvalidLease means a lease was not issued to this node by Claim or
	// Renew: another node's, or a zero revision.
	ErrInvalidLease = errors.New("cluster: invalid lease")
	// ErrInvalidConfig means a LeaseConfig is out of bounds.
	ErrInvalidConfig = errors.New("cluster: invalid lease config")
)

// OwnedError says which node owns a session that another node tried to claim.
// It matches ErrOwned with errors.Is.
type OwnedError struct {
	// Session is the session that was claimed.
	Session string
	// Node is the owner's name.
	Node string
	// Revision is the owner's lease revision when it was read.
	Revision uint64
}

// Error names the owner and its revision.
func (e *OwnedError) Error() string {
	return fmt.Sprintf("cluster: session owned by node %s (lease revision %d)", e.Node,
		e.Revision)
}

// Unwrap makes an OwnedError match ErrOwned.
func (e *OwnedError) Unwrap() error { return ErrOwned }
