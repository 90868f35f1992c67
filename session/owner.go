package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stated-dev/stated/storage"
)

// Ownership decides, in a cluster, which node serves each session. The manager
// asks it before a session becomes live on this node and tells it when the
// session leaves memory. A manager without one (Config.Ownership nil) serves
// every session it is asked for, as a single node does.
//
// Implementations must make this node the session's only writer from Acquire
// on: in a cluster, a lease plus a fence on the session's log, so that a node
// that lost the session cannot append to it (storage.ErrFenced).
type Ownership interface {
	// Acquire makes this node the owner of the existing session id, before the
	// manager reads its log. It returns an *OwnedElsewhereError (matching
	// ErrOwnedElsewhere) when another live node owns the session, and any other
	// error when ownership could not be settled; the manager then serves nothing
	// of the session.
	Acquire(ctx context.Context, id string) error
	// Release gives up ownership of a session the manager no longer holds in
	// memory (evicted, dropped or failed to load), so that another node may take
	// it at once. Failures are the implementation's to log: ownership that is not
	// released runs out by itself.
	Release(ctx context.Context, id string)
}

// OwnedElsewhereError says that another node owns a session. It matches
// ErrOwnedElsewhere.
type OwnedElsewhereError struct {
	// Node names the owner.
	Node string
}

// Error names the owner.
func (e *OwnedElsewhereError) Error() string {
	return fmt.Sprintf("session: owned by node %s", e.Node)
}

// Unwrap makes the error match ErrOwnedElsewhere.
func (e *OwnedElsewhereError) Unwrap() error { return ErrOwnedElsewhere }

// releaseTimeout bounds one Release the manager asks for.
const releaseTimeout = 5 * time.Second

// acquire makes this node the owner of session id, if the manager has an
// Ownership.
func (m *Manager) acquire(ctx context.Context, id string) error {
	if m.cfg.Ownership == nil {
		return nil
	}
	return m.cfg.Ownership.Acquire(ctx, id)
}

// release gives up the ownership of sessions the manager dropped from memory.
// It does I/O: call it without m.mu held.
func (m *Manager) release(ids ...string) {
	if m.cfg.Ownership == nil || len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	for _, id := range ids {
		m.cfg.Ownership.Release(ctx, id)
	}
}

// Drop takes session id out of this node at once, because this node no longer
// owns it (its lease was lost): the answer in flight is cancelled and nothing
// more of it is stored, every subscriber gets a NoteClosed with an error
// matching ErrNotOwner, and the session is forgotten, to be loaded again (here
// or on another node) when a client next asks for it. It reports whether the
// session was live. Ownership is not released: the caller says it is gone.
func (m *Manager) Drop(id string, cause error) bool {
	m.mu.Lock()
	s, ok := m.live[id]
	if ok {
		delete(m.live, id)
	}
	m.mu.Unlock()
	if !ok {
		return false
	}
	s.mu.Lock()
	s.dropLocked(cause)
	s.mu.Unlock()
	m.log.Info("session dropped: this node no longer owns it", "session", id, "err", cause)
	return true
}

// dropLocked stops serving the session: no more writes, no more answer, no more
// subscribers. s.mu must be held.
func (s *Session) dropLocked(cause error) {
	if s.dropped {
		return
	}
	s.dropped = true
	if s.stop != nil {
		s.stop()
	}
	err := fmt.Errorf("%w: %v", ErrNotOwner, cause)
	for sub := range s.subs {
		sub.Deliver(Note{Kind: NoteClosed, Err: err})
	}
	clear(s.subs)
}

// checkWritableLocked refuses a write to a session this node dropped. s.mu
// must be held.
func (s *Session) checkWritableLocked() error {
	if s.dropped {
		return fmt.Errorf("%w: session %s", ErrNotOwner, s.id)
	}
	return nil
}

// onAppendFailedLocked reacts to a failed write of the session's log. A fenced
// write means another node took the session over; a write that does not
// continue the log means the log holds what this node's copy lacks (a write
// whose answer was lost). Either way the copy in memory is no longer the
// session: it is dropped, so the next client reloads it from the store, here or
// on its owner. s.mu must be held.
func (s *Session) onAppendFailedLocked(err error) {
	if !errors.Is(err, storage.ErrFenced) && !errors.Is(err, storage.ErrSeqConflict) {
		return
	}
	s.dropLocked(err)
	go s.mgr.forget(s)
}

// forget removes s from the live sessions if it is still the one held for its
// ID, and releases its ownership.
func (m *Manager) forget(s *Session) {
	m.mu.Lock()
	mine := m.live[s.id] == s
	if mine {
		delete(m.live, s.id)
	}
	m.mu.Unlock()
	if mine {
		m.log.Warn("session dropped after a refused write", "session", s.id)
		m.release(s.id)
	}
}

// MemoryOwners is an in-memory registry of session owners shared by the
// managers of one process, for tests only: it stands for a cluster's lease
// bucket without fencing (a dropped session is refused its writes by the
// session layer itself).
type MemoryOwners struct {
	mu     sync.Mutex
	owners map[string]string // session ID -> node
}

// NewMemoryOwners returns an empty registry.
func NewMemoryOwners() *MemoryOwners {
	return &MemoryOwners{owners: make(map[string]string)}
}

// Node returns the Ownership of one node over the registry.
func (r *MemoryOwners) Node(name string) Ownership {
	return memoryOwnership{reg: r, node: name}
}

// Owner returns the node that owns session id, or "".
func (r *MemoryOwners) Owner(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owners[id]
}

// Revoke removes the owner of session id, as a lease that ran out would.
func (r *MemoryOwners) Revoke(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.owners, id)
}

type memoryOwnership struct {
	reg  *MemoryOwners
	node string
}

func (o memoryOwnership) Acquire(ctx context.Context, id string) error {
	o.reg.mu.Lock()
	defer o.reg.mu.Unlock()
	if cur, ok := o.reg.owners[id]; ok && cur != o.node {
		return &OwnedElsewhereError{Node: cur}
	}
	o.reg.owners[id] = o.node
	return nil
}

func (o memoryOwnership) Release(ctx context.Context, id string) {
	o.reg.mu.Lock()
	defer o.reg.mu.Unlock()
	if o.reg.owners[id] == o.node {
		delete(o.reg.owners, id)
	}
}
