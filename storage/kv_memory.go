package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// MemoryKV is an in-memory KV for tests only: nothing survives the process.
type MemoryKV struct {
	mu   sync.Mutex // guards vals and rev
	vals map[string]KVEntry
	rev  uint64
}

var _ KV = (*MemoryKV)(nil)

// NewMemoryKV returns an empty in-memory KV, for tests.
func NewMemoryKV() *MemoryKV {
	return &MemoryKV{vals: make(map[string]KVEntry)}
}

// Get returns key's value and revision, or ErrKeyNotFound.
func (m *MemoryKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok {
		return nil, 0, ErrKeyNotFound
	}
	return cloneBytes(e.Value), e.Revision, nil
}

// Put writes key and returns its new revision.
func (m *MemoryKV) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	if err := validateKV(key, val); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setLocked(key, val), nil
}

// CompareAndPut writes key if its revision is rev (0: absent).
func (m *MemoryKV) CompareAndPut(ctx context.Context, key string, val []byte,
	rev uint64) (uint64, error) {
	if err := validateKV(key, val); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vals[key].Revision != rev {
		return 0, fmt.Errorf("%w: %s", ErrRevisionConflict, key)
	}
	return m.setLocked(key, val), nil
}

func (m *MemoryKV) setLocked(key string, val []byte) uint64 {
	m.rev++
	m.vals[key] = KVEntry{Key: key, Value: cloneBytes(val), Revision: m.rev}
	return m.rev
}

// Delete removes key.
func (m *MemoryKV) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, key)
	return nil
}

// List returns the entries under prefix after the key after, in key order.
func (m *MemoryKV) List(ctx context.Context, prefix, after string, limit int) ([]KVEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []KVEntry
	for k, e := range m.vals {
		if strings.HasPrefix(k, prefix) && k > after {
			e.Value = cloneBytes(e.Value)
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
