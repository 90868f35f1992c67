// Package storage keeps sessions durably: a small meta record per session and an
// append-only log of opaque records numbered by seq from 1.
//
// The session layer decides what a record means; storage guarantees order,
// continuity and durability. Badger is the single-node store; Memory is for tests.
package storage

import "context"

// Meta is what a session is created with. Data is opaque to storage.
type Meta struct {
	ID     string
	Tenant string
	// Epoch is the generation of the session's log. It changes when the log had to
	// be recreated, so that a client holding seqs of an old log is not handed
	// another log's events under the same numbers.
	Epoch uint64
	Data  []byte
}

// Record is one entry of a session's log.
type Record struct {
	Seq  uint64
	Data []byte
}

// Store is a durable home for sessions. Implementations are safe for concurrent use.
//
// Durability: when Create or Append returns nil, what it wrote survives a crash of
// the process (and, for Badger with synced writes, of the machine).
type Store interface {
	// Create stores a new session. It returns ErrExists if the ID is taken.
	Create(ctx context.Context, meta Meta) error

	// Meta returns a session's meta record, or ErrNotFound.
	Meta(ctx context.Context, id string) (Meta, error)

	// Append adds recs to the end of the session's log, atomically: all or none.
	// recs must be numbered consecutively from LastSeq+1; otherwise Append writes
	// nothing and returns an error that matches ErrSeqConflict. It returns
	// ErrNotFound for an unknown session.
	Append(ctx context.Context, id string, recs []Record) error

	// Read returns the session's records with Seq greater than after, in order, at
	// most limit of them (limit <= 0 means all). It returns ErrNotFound for an
	// unknown session.
	Read(ctx context.Context, id string, after uint64, limit int) ([]Record, error)

	// LastSeq returns the seq of the session's last record (0 for an empty log), or
	// ErrNotFound.
	LastSeq(ctx context.Context, id string) (uint64, error)

	// Close flushes and releases the store. It is safe to call more than once.
	Close() error
}
