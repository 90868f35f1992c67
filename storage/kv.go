package storage

import (
	"context"
	"errors"
)

// KV is a small durable key-value space for what is not a session log: tenants,
// API keys, budgets, presets, ledger records. Keys are opaque strings; callers
// namespace them with a prefix ("tenant/", "preset/", ...).
//
// Every value carries a revision that changes on each write, so a caller can
// update with compare-and-swap. Implementations are safe for concurrent use and
// durable when a write returns nil, as Store is.
type KV interface {
	// Get returns the value and revision of key, or ErrKeyNotFound.
	Get(ctx context.Context, key string) ([]byte, uint64, error)

	// Put writes key unconditionally and returns its new revision.
	Put(ctx context.Context, key string, val []byte) (uint64, error)

	// CompareAndPut writes key only if its revision is rev (0: the key must not
	// exist) and returns the new revision; otherwise it writes nothing and returns
	// an error matching ErrRevisionConflict.
	CompareAndPut(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)

	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error

	// List returns the entries whose keys start with prefix and sort after the key
	// after (empty: from the start), in key order, at most limit of them (limit <= 0
	// means all).
	List(ctx context.Context, prefix, after string, limit int) ([]KVEntry, error)
}

// KVEntry is one key of a List.
type KVEntry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// Limits of the KV space.
const (
	// MaxKeyLen is the longest KV key, in bytes.
	MaxKeyLen = 1024
	// MaxValueBytes bounds one KV value.
	MaxValueBytes = 1 << 20
)

var (
	// ErrKeyNotFound means the key has no value.
	ErrKeyNotFound = errors.New("storage: key not found")
	// ErrRevisionConflict means a CompareAndPut lost: the key changed since the
	// revision the caller read. Re-read and retry.
	ErrRevisionConflict = errors.New("storage: revision conflict")
)

func validateKV(key string, val []byte) error {
	switch {
	case key == "":
		return errors.New("storage: empty key")
	case len(key) > MaxKeyLen:
		return errors.New("storage: key longer than 1024 bytes")
	case len(val) > MaxValueBytes:
		return ErrTooLarge
	}
	return nil
}
