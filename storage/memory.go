package storage

import (
	"context"
	"sync"
)

// Memory is a Store that keeps everything in memory. It is for tests only:
// nothing survives the process. It has the semantics of Badger, limits included,
// and copies data in and out, so callers may reuse their buffers.
type Memory struct {
	// mu guards sessions and closed.
	mu       sync.Mutex
	sessions map[string]*memSession
	closed   bool
}

var _ Store = (*Memory)(nil)

type memSession struct {
	meta Meta
	recs []Record // recs[i].Seq == i+1
}

// NewMemory returns an empty in-memory store, for tests only.
func NewMemory() *Memory {
	return &Memory{sessions: make(map[string]*memSession)}
}

// Create stores a new session. It returns ErrExists if the ID is taken,
// ErrInvalidID or ErrTooLarge for a meta record out of limits, ErrClosed after
// Close.
func (m *Memory) Create(ctx context.Context, meta Meta) error {
	if err := validateMeta(meta); err != nil {
		return err
	}
	return m.locked(ctx, func() error {
		if _, ok := m.sessions[meta.ID]; ok {
			return ErrExists
		}
		meta.Data = cloneBytes(meta.Data)
		m.sessions[meta.ID] = &memSession{meta: meta}
		return nil
	})
}

// Meta returns a copy of the session's meta record, or ErrNotFound.
func (m *Memory) Meta(ctx context.Context, id string) (Meta, error) {
	var meta Meta
	err := m.session(ctx, id, func(s *memSession) error {
		meta = s.meta
		meta.Data = cloneBytes(s.meta.Data)
		return nil
	})
	return meta, err
}

// Append adds copies of recs to the session's log, all or none, as Store.Append
// describes.
func (m *Memory) Append(ctx context.Context, id string, recs []Record) error {
	if err := validateAppend(id, recs); err != nil {
		return err
	}
	return m.session(ctx, id, func(s *memSession) error {
		if err := checkContinues(uint64(len(s.recs)), recs); err != nil {
			return err
		}
		for _, r := range recs {
			s.recs = append(s.recs, Record{Seq: r.Seq, Data: cloneBytes(r.Data)})
		}
		return nil
	})
}

// Read returns copies of the session's records after seq after, in order, at most
// limit of them (limit <= 0: all), or ErrNotFound.
func (m *Memory) Read(ctx context.Context, id string, after uint64, limit int) ([]Record, error) {
	var out []Record
	err := m.session(ctx, id, func(s *memSession) error {
		if after >= uint64(len(s.recs)) {
			return nil
		}
		recs := s.recs[after:]
		if limit > 0 && limit < len(recs) {
			recs = recs[:limit]
		}
		out = make([]Record, len(recs))
		for i, r := range recs {
			out[i] = Record{Seq: r.Seq, Data: cloneBytes(r.Data)}
		}
		return nil
	})
	return out, err
}

// LastSeq returns the seq of the session's last record (0 for an empty log), or
// ErrNotFound.
func (m *Memory) LastSeq(ctx context.Context, id string) (uint64, error) {
	var last uint64
	err := m.session(ctx, id, func(s *memSession) error {
		last = uint64(len(s.recs))
		return nil
	})
	return last, err
}

// Close drops everything. Later calls return nil; other methods return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.sessions = nil
	return nil
}

// session runs fn on the session with mu held, or returns ErrNotFound.
func (m *Memory) session(ctx context.Context, id string, fn func(*memSession) error) error {
	if err := validateID(id); err != nil {
		return err
	}
	return m.locked(ctx, func() error {
		s, ok := m.sessions[id]
		if !ok {
			return ErrNotFound
		}
		return fn(s)
	})
}

// locked runs fn with mu held, after the closed and ctx checks.
func (m *Memory) locked(ctx context.Context, fn func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn()
}

// cloneBytes copies b; empty input gives nil, as Badger reads it back.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
