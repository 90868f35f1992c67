package storage

// BadgerKV keeps the KV space in the same Badger database as the sessions, under
// its own key kind, so one data directory holds everything a node keeps.
//
// Key layout: 'k' followed by the KV key's bytes. The value is the revision, 8
// bytes big-endian, followed by the value's bytes. Revisions come from a Badger
// sequence (key 's' "kv-revision"), leased in blocks: they are unique across the
// store's life, and a revision never names two different writes even after the
// key was deleted and written again, so a compare-and-swap against a stale
// revision always fails. A crash skips the rest of a leased block, which only
// leaves gaps.
//
// KV writes are Badger transactions of their own, not the session committer's:
// they touch only 'k' keys, which the committer never reads or writes, so the two
// never conflict. A compare-and-swap reads the key inside its transaction, so two
// concurrent ones on the same key cannot both commit: Badger's conflict check
// fails the second, which is reported as ErrRevisionConflict.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

const (
	kindKV = 'k'

	// kvRevisionKey holds the lease of the revision sequence.
	kvRevisionKey = "s" + "kv-revision"
	// kvRevisionLease is how many revisions one lease hands out.
	kvRevisionLease = 1000
	// kvPutAttempts bounds how often an unconditional write is retried after
	// losing a race with another write of the same key.
	kvPutAttempts = 16
	// MaxBatchEntries bounds the writes of one BadgerKV.Apply.
	MaxBatchEntries = 256
)

// BadgerKV is the KV space of a Badger store. It is safe for concurrent use and
// durable as the store is: with SyncWrites, a write that returned nil survives a
// machine crash. Every method returns ErrClosed once the store is closed.
type BadgerKV struct {
	b   *Badger
	rev *badger.Sequence
}

var _ KV = (*BadgerKV)(nil)

// KV returns the store's KV space. Call it once per store and share the result:
// each BadgerKV leases its own block of revisions, so several are correct but
// waste revisions. It fails only if the store is closed or the revision lease
// cannot be read.
func (b *Badger) KV() (*BadgerKV, error) {
	b.stateMu.RLock()
	defer b.stateMu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	seq, err := b.db.GetSequence([]byte(kvRevisionKey), kvRevisionLease)
	if err != nil {
		return nil, fmt.Errorf("storage: kv revision sequence: %w", err)
	}
	return &BadgerKV{b: b, rev: seq}, nil
}

// Get returns the value and revision of key, or ErrKeyNotFound.
func (k *BadgerKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	var (
		val []byte
		rev uint64
	)
	err := k.run(ctx, false, func(txn *badger.Txn) error {
		var err error
		val, rev, err = kvRead(txn, key)
		return err
	})
	return val, rev, err
}

// Put writes key unconditionally and returns its new revision. It returns an
// error for an empty key, a key over MaxKeyLen and ErrTooLarge for a value over
// MaxValueBytes.
func (k *BadgerKV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	if err := validateKV(key, val); err != nil {
		return 0, err
	}
	for range kvPutAttempts {
		rev, err := k.write(ctx, key, val, func(uint64) bool { return true })
		if !errors.Is(err, ErrRevisionConflict) {
			return rev, err
		}
	}
	return 0, fmt.Errorf("%w: %s: too many concurrent writers", ErrRevisionConflict, key)
}

// CompareAndPut writes key only if its revision is rev (0: the key must not
// exist) and returns the new revision; otherwise it writes nothing and returns an
// error matching ErrRevisionConflict.
func (k *BadgerKV) CompareAndPut(ctx context.Context, key string, val []byte,
	rev uint64) (uint64, error) {
	if err := validateKV(key, val); err != nil {
		return 0, err
	}
	return k.write(ctx, key, val, func(current uint64) bool { return current == rev })
}

// write sets key to val in one transaction if ok accepts the key's current
// revision (0 when absent).
func (k *BadgerKV) write(ctx context.Context, key string, val []byte,
	ok func(current uint64) bool) (uint64, error) {
	var rev uint64
	err := k.run(ctx, true, func(txn *badger.Txn) error {
		_, current, err := kvRead(txn, key)
		if err != nil && !errors.Is(err, ErrKeyNotFound) {
			return err
		}
		if !ok(current) {
			return fmt.Errorf("%w: %s", ErrRevisionConflict, key)
		}
		rev, err = k.nextRevision()
		if err != nil {
			return err
		}
		return txn.Set(kvKey(key), kvValue(rev, val))
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// Delete removes key. Deleting a missing key is not an error.
func (k *BadgerKV) Delete(ctx context.Context, key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return nil
	}
	return k.run(ctx, true, func(txn *badger.Txn) error {
		return txn.Delete(kvKey(key))
	})
}

// KVBatch is a set of writes that BadgerKV.Apply makes atomically.
type KVBatch struct {
	// Create holds entries whose keys must not exist: if one does, Apply writes
	// nothing and returns ErrRevisionConflict.
	Create []KVEntry
	// Put holds entries written whatever their keys hold.
	Put []KVEntry
	// Delete holds keys removed; a missing key is not an error.
	Delete []string
}

func (b KVBatch) size() int { return len(b.Create) + len(b.Put) + len(b.Delete) }

// Apply makes every write of batch in one transaction: all of them or, on error,
// none. Revisions are assigned as Put assigns them and not returned. It returns
// ErrRevisionConflict when a key of batch.Create exists (or another writer
// touched it concurrently), ErrTooLarge for more than MaxBatchEntries writes, and
// the errors of Put for a key or value out of limits.
func (k *BadgerKV) Apply(ctx context.Context, batch KVBatch) error {
	if n := batch.size(); n > MaxBatchEntries {
		return fmt.Errorf("%w: batch of %d writes, limit %d", ErrTooLarge, n, MaxBatchEntries)
	}
	writes := slices.Concat(batch.Create, batch.Put)
	for _, e := range writes {
		if err := validateKV(e.Key, e.Value); err != nil {
			return err
		}
	}
	for _, key := range batch.Delete {
		if err := validateKV(key, nil); err != nil {
			return err
		}
	}
	return k.run(ctx, true, func(txn *badger.Txn) error {
		for _, e := range batch.Create {
			_, _, err := kvRead(txn, e.Key)
			if err == nil {
				return fmt.Errorf("%w: %s exists", ErrRevisionConflict, e.Key)
			}
			if !errors.Is(err, ErrKeyNotFound) {
				return err
			}
		}
		for _, e := range writes {
			rev, err := k.nextRevision()
			if err != nil {
				return err
			}
			if err := txn.Set(kvKey(e.Key), kvValue(rev, e.Value)); err != nil {
				return fmt.Errorf("storage: kv batch: %w", err)
			}
		}
		for _, key := range batch.Delete {
			if err := txn.Delete(kvKey(key)); err != nil {
				return fmt.Errorf("storage: kv batch: %w", err)
			}
		}
		return nil
	})
}

// List returns the entries whose keys start with prefix and sort after the key
// after (empty: from the start), in key order, at most limit of them (limit <= 0
// means all). The values are the caller's to keep.
func (k *BadgerKV) List(ctx context.Context, prefix, after string, limit int) ([]KVEntry, error) {
	var out []KVEntry
	err := k.run(ctx, false, func(txn *badger.Txn) error {
		var err error
		out, err = kvList(ctx, txn, prefix, after, limit)
		return err
	})
	return out, err
}

func kvList(ctx context.Context, txn *badger.Txn, prefix, after string,
	limit int) ([]KVEntry, error) {
	full := kvKey(prefix)
	it := txn.NewIterator(badger.IteratorOptions{
		PrefetchValues: true, PrefetchSize: 64, Prefix: full,
	})
	defer it.Close()

	start := full
	if after >= prefix {
		// The first key after "after" is "after" followed by a zero byte.
		start = append(kvKey(after), 0)
	}
	var out []KVEntry
	for it.Seek(start); it.ValidForPrefix(full); it.Next() {
		if len(out)%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		item := it.Item()
		key := string(item.Key()[1:])
		if !strings.HasPrefix(key, prefix) || key <= after {
			continue
		}
		var e KVEntry
		err := item.Value(func(v []byte) error {
			var derr error
			e.Revision, e.Value, derr = kvDecode(v)
			return derr
		})
		if err != nil {
			return nil, err
		}
		e.Key = key
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

// run runs fn in a transaction after the common checks, and translates a lost
// commit race into ErrRevisionConflict.
func (k *BadgerKV) run(ctx context.Context, update bool, fn func(*badger.Txn) error) error {
	k.b.stateMu.RLock()
	defer k.b.stateMu.RUnlock()
	if k.b.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !update {
		return k.b.db.View(fn)
	}
	err := k.b.db.Update(fn)
	if errors.Is(err, badger.ErrConflict) {
		return fmt.Errorf("%w: concurrent write", ErrRevisionConflict)
	}
	return err
}

// nextRevision returns a revision no write has had; never 0.
func (k *BadgerKV) nextRevision() (uint64, error) {
	n, err := k.rev.Next()
	if err != nil {
		return 0, fmt.Errorf("storage: kv revision: %w", err)
	}
	return n + 1, nil
}

// kvRead returns key's value and revision inside txn, or ErrKeyNotFound.
func kvRead(txn *badger.Txn, key string) ([]byte, uint64, error) {
	if key == "" || len(key) > MaxKeyLen {
		return nil, 0, ErrKeyNotFound
	}
	item, err := txn.Get(kvKey(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, ErrKeyNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage: kv read: %w", err)
	}
	var (
		val []byte
		rev uint64
	)
	err = item.Value(func(v []byte) error {
		var derr error
		rev, val, derr = kvDecode(v)
		return derr
	})
	return val, rev, err
}

func kvKey(key string) []byte {
	out := make([]byte, 0, 1+len(key))
	return append(append(out, kindKV), key...)
}

func kvValue(rev uint64, val []byte) []byte {
	out := make([]byte, 8, 8+len(val))
	binary.BigEndian.PutUint64(out, rev)
	return append(out, val...)
}

// kvDecode splits a stored value; the returned bytes do not alias v.
func kvDecode(v []byte) (uint64, []byte, error) {
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("%w: kv value of %d bytes", ErrCorrupt, len(v))
	}
	val := append([]byte{}, v[8:]...)
	return binary.BigEndian.Uint64(v[:8]), val, nil
}
