package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// keeperParallel bounds the renewals a Keeper runs at once.
const keeperParallel = 16

// Keeper renews the leases this node holds, every third of the TTL, so that a
// lease is renewed while two thirds of its time are left, and reports at once a
// lease it could not keep. It is safe for concurrent use.
type Keeper struct {
	leases *Leases
	onLost func(Lease, error)
	every  time.Duration

	// heldMu guards held and closed.
	heldMu sync.Mutex
	held   map[string]*heldLease
	closed bool

	// stop ends the renewals in flight when the Keeper closes; done closes when
	// the renewal loop has returned.
	stop      context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// heldLease is one lease a Keeper holds.
type heldLease struct {
	// mu serializes the renewals and the release of the lease, and guards lease
	// and gone. It is held while a renewal waits for NATS.
	mu    sync.Mutex
	lease Lease
	gone  bool
}

// NewKeeper starts a Keeper of leases. onLost is called once for every held
// lease that is lost (another node took it, its key is gone, or it expired
// before a renewal was confirmed), with the lease as last renewed and an error
// matching ErrLost. The owner must stop writing and streaming for the session
// when it is called. onLost runs on the Keeper's goroutines, possibly several
// at once for different sessions, and must return quickly; it may call the
// Keeper's methods. Close stops the Keeper.
func NewKeeper(leases *Leases, onLost func(Lease, error)) *Keeper {
	stop, cancel := context.WithCancel(context.Background())
	k := &Keeper{
		leases: leases,
		onLost: onLost,
		every:  leases.TTL() / 3,
		held:   make(map[string]*heldLease),
		stop:   stop,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go k.run()
	return k
}

// Hold starts keeping lease, which Claim or Renew returned to this node, in
// place of any lease the Keeper held for the session. It returns
// ErrInvalidLease for another node's lease and ErrKeeperClosed after Close.
func (k *Keeper) Hold(lease Lease) error {
	if _, err := k.leases.checkLease(lease); err != nil {
		return err
	}
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	if k.closed {
		return ErrKeeperClosed
	}
	k.held[lease.Session] = &heldLease{lease: lease}
	return nil
}

// Lease returns the session's lease as last renewed, and whether the Keeper
// holds one.
func (k *Keeper) Lease(session string) (Lease, bool) {
	h := k.lookup(session)
	if h == nil {
		return Lease{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease, !h.gone
}

// Release stops keeping the session's lease and releases it, so another node
// may claim the session at once. It waits for a renewal in flight. It returns
// ErrNotHeld if the Keeper holds no lease for the session, and otherwise what
// Leases.Release returns.
func (k *Keeper) Release(ctx context.Context, session string) error {
	k.heldMu.Lock()
	h := k.held[session]
	delete(k.held, session)
	k.heldMu.Unlock()
	if h == nil {
		return ErrNotHeld
	}

	h.mu.Lock()
	h.gone = true
	lease := h.lease
	h.mu.Unlock()
	return k.leases.Release(ctx, lease)
}

// ReleaseAll releases every lease the Keeper holds, as a node shutting down
// does so that other nodes take its sessions over without waiting for the TTL.
// It returns the failures joined.
func (k *Keeper) ReleaseAll(ctx context.Context) error {
	var errs []error
	for _, session := range k.sessions() {
		if err := k.Release(ctx, session); err != nil && !errors.Is(err, ErrNotHeld) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops renewing and waits for the renewals in flight to end. The leases
// it held are neither released nor reported lost; they expire after the TTL
// unless released. Hold fails after Close. It is safe to call more than once.
func (k *Keeper) Close() {
	k.closeOnce.Do(func() {
		k.heldMu.Lock()
		k.closed = true
		k.heldMu.Unlock()
		k.cancel()
		<-k.done
	})
}

// run renews every held lease once per period until the Keeper closes.
func (k *Keeper) run() {
	defer close(k.done)
	ticker := time.NewTicker(k.every)
	defer ticker.Stop()
	for {
		select {
		case <-k.stop.Done():
			return
		case <-ticker.C:
			k.renewAll()
		}
	}
}

// renewAll renews every held lease, keeperParallel at a time, and returns when
// all renewals have ended.
func (k *Keeper) renewAll() {
	k.heldMu.Lock()
	held := make([]*heldLease, 0, len(k.held))
	for _, h := range k.held {
		held = append(held, h)
	}
	k.heldMu.Unlock()

	slots := make(chan struct{}, keeperParallel)
	var wg sync.WaitGroup
	for _, h := range held {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			k.renew(h)
		}()
	}
	wg.Wait()
}

// renew renews one held lease and reports it if it is lost.
func (k *Keeper) renew(h *heldLease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	next, err := k.leases.Renew(k.stop, h.lease)
	switch {
	case err == nil:
		h.lease = next
	case k.stop.Err() != nil:
		// Closing: the lease is left to expire, not lost.
	default:
		h.gone = true
		if k.forget(h) {
			k.onLost(h.lease, err)
		}
	}
}

// forget removes h from the held leases, and reports whether it was still the
// one held for its session (a Hold may have replaced it).
func (k *Keeper) forget(h *heldLease) bool {
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	if k.held[h.lease.Session] != h {
		return false
	}
	delete(k.held, h.lease.Session)
	return true
}

func (k *Keeper) lookup(session string) *heldLease {
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	return k.held[session]
}

func (k *Keeper) sessions() []string {
	k.heldMu.Lock()
	defer k.heldMu.Unlock()
	sessions := make([]string, 0, len(k.held))
	for s := range k.held {
		sessions = append(sessions, s)
	}
	return sessions
}
