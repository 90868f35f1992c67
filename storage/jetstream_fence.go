package storage

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// logWriter is an ownership a store writes under: an owner name and its lease
// revision. The zero logWriter holds no ownership.
type logWriter struct {
	owner    string
	revision uint64
}

// Fence makes owner, at lease revision revision, the session's writer: it
// appends a fence message that every older ownership's writes now fail against,
// and stamps this store's later Appends of the session with the ownership. Call
// it after claiming the session and before reading its log, so that no stale
// owner can add to the log once it has been read. Fencing again with the same
// ownership is a no-op.
//
// It returns ErrFenced if a newer ownership has fenced or written the log,
// ErrNotFound for an unknown session (Create first), ErrInvalidID or
// ErrInvalidOwner for input out of limits, ErrSeqConflict if writes kept landing
// while it tried, and ErrClosed after Close.
func (s *JetStream) Fence(ctx context.Context, id string, owner string, revision uint64) error {
	if err := validateID(id); err != nil {
		return err
	}
	if err := validateOwner(owner, revision); err != nil {
		return err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	w := logWriter{owner: owner, revision: revision}
	for range jsFenceAttempts {
		last, err := s.last(ctx, id)
		if err != nil {
			return err
		}
		if err := w.check(last); err != nil {
			return err
		}
		if last.writer == w {
			s.setWriter(id, w)
			return nil
		}

		msg := logMsg(id, msgFence, last.seq, w, nil)
		err = s.publish(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last.streamSeq))
		if err == nil {
			s.setWriter(id, w)
			return nil
		}
		if !isWrongLastSeq(err) {
			return wrapJS("fence", err)
		}
	}
	return fmt.Errorf("%w: fence: the log kept moving", ErrSeqConflict)
}

// Disown forgets the ownership Fence gave this store for the session: later
// Appends of it carry none and fail with ErrFenced once any owner has fenced
// the log. Call it when the session's lease is lost or released.
func (s *JetStream) Disown(id string) {
	s.writersMu.Lock()
	defer s.writersMu.Unlock()
	delete(s.writers, id)
}

func (s *JetStream) setWriter(id string, w logWriter) {
	s.writersMu.Lock()
	defer s.writersMu.Unlock()
	s.writers[id] = w
}

func (s *JetStream) writerOf(id string) logWriter {
	s.writersMu.Lock()
	defer s.writersMu.Unlock()
	return s.writers[id]
}

// check returns ErrFenced if the message e was written under an ownership newer
// than w (a higher revision, or the same revision held by another owner).
func (w logWriter) check(e logEntry) error {
	newer := e.writer.revision > w.revision ||
		(e.writer.revision == w.revision && e.writer.owner != w.owner)
	if !newer {
		return nil
	}
	return fmt.Errorf("%w: owner %q at revision %d, this writer is at %d", ErrFenced,
		e.writer.owner, e.writer.revision, w.revision)
}

// validateOwner checks an ownership against the limits: a name of 1 to
// MaxOwnerLen bytes of printable ASCII without spaces, and a revision above 0.
func validateOwner(owner string, revision uint64) error {
	if owner == "" || len(owner) > MaxOwnerLen {
		return fmt.Errorf("%w: name of %d bytes, want 1 to %d", ErrInvalidOwner, len(owner),
			MaxOwnerLen)
	}
	for i := 0; i < len(owner); i++ {
		if owner[i] <= ' ' || owner[i] > '~' {
			return fmt.Errorf("%w: byte %#x in name", ErrInvalidOwner, owner[i])
		}
	}
	if revision == 0 {
		return fmt.Errorf("%w: revision 0", ErrInvalidOwner)
	}
	return nil
}
