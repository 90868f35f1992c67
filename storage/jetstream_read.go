package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Read returns the session's records after seq after, in seq order, at most
// limit of them (limit <= 0: all), as the log stood when Read began. It returns
// ErrNotFound for an unknown session and ErrCorrupt if the log has a gap.
//
// Shortcoming: the replay starts at the session's first message and skips what
// lies before after, so reading the tail of a long log costs as much as reading
// all of it (a read with nothing after after costs one request). That is
// acceptable while the node's local Badger store, as the cache of the log,
// serves resumes, and this store serves takeovers, which read everything
// anyway. A seek by seq (a binary search over the subject) would lift it.
func (s *JetStream) Read(ctx context.Context, id string, after uint64,
	limit int) ([]Record, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()

	last, err := s.last(ctx, id)
	if err != nil || after >= last.seq {
		return nil, err
	}
	return s.replay(ctx, id, after, expectedRecords(last.seq-after, limit), last.streamSeq)
}

// replay reads n records after seq after from the session's subject through a
// short-lived consumer, stopping at stream sequence through at the latest.
func (s *JetStream) replay(ctx context.Context, id string, after uint64, n int,
	through uint64) ([]Record, error) {
	cons, err := s.newReader(ctx, id)
	if err != nil {
		return nil, err
	}
	defer s.dropConsumer(ctx, cons.CachedInfo().Name)

	recs := make([]Record, 0, min(n, 1024))
	prev := after
	for {
		msgs, err := jsFetch(ctx, cons)
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			rec, done, err := nextLogRecord(msg, &prev, through)
			if err != nil {
				return nil, err
			}
			if rec.Data != nil {
				recs = append(recs, rec)
			}
			if done || len(recs) == n {
				return recs, nil
			}
		}
	}
}

// newReader creates a consumer that replays the session's subject. In a cluster
// the server places it on a random replica it believes alive; for a while after
// a server is lost that may be the lost one, whose answer never comes, so each
// attempt has its own timeout and the next one draws again.
func (s *JetStream) newReader(ctx context.Context, id string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     logSubject(id),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: jsReaderIdle,
	}
	var err error
	for range jsReaderAttempts {
		attempt, cancel := context.WithTimeout(ctx, jsReaderTimeout)
		var cons jetstream.Consumer
		cons, err = s.stream.CreateConsumer(attempt, cfg)
		cancel()
		if err == nil {
			return cons, nil
		}
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if ctx.Err() != nil || !timedOut {
			break
		}
	}
	return nil, fmt.Errorf("storage: jetstream: read: new consumer: %w", err)
}

// fetch returns the next messages cons has for the reader, at least one. The
// consumer serves them from its own replica of the stream, which may trail the
// leader by moments, and in a cluster it answers on a server that may not have
// told the reader's server yet (no responders): either way fetch asks again,
// for up to jsFetchTimeout.
func jsFetch(ctx context.Context, cons jetstream.Consumer) ([]jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, jsFetchTimeout)
	defer cancel()
	for {
		batch, err := cons.FetchNoWait(jsFetchBatch)
		if err != nil {
			return nil, fmt.Errorf("storage: jetstream: read: fetch: %w", err)
		}
		msgs := make([]jetstream.Msg, 0, jsFetchBatch)
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		err = batch.Error()
		switch {
		case len(msgs) > 0:
			return msgs, nil
		case err != nil && !errors.Is(err, nats.ErrNoResponders):
			return nil, fmt.Errorf("storage: jetstream: read: fetch: %w", err)
		}
		if err := jsSleep(ctx, jsRetryWait); err != nil {
			return nil, fmt.Errorf("storage: jetstream: read: the log's end did not arrive: %w",
				err)
		}
	}
}

// sleep waits for d or until ctx ends, and then returns ctx's error.
func jsSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// nextLogRecord looks at one replayed message. It returns the record it holds if
// that comes after *prev (the last seq taken so far, which it advances), and
// done once the message is the last one the replay wants.
func nextLogRecord(msg jetstream.Msg, prev *uint64, through uint64) (Record, bool, error) {
	md, err := msg.Metadata()
	if err != nil {
		return Record{}, false, fmt.Errorf("storage: jetstream: read: %w", err)
	}
	e, err := parseLogEntry(md.Sequence.Stream, msg.Headers())
	if err != nil {
		return Record{}, false, err
	}
	done := e.streamSeq >= through
	if e.kind != msgRecord || e.seq <= *prev {
		return Record{}, done, nil
	}
	if e.seq != *prev+1 || len(msg.Data()) == 0 {
		return Record{}, false, fmt.Errorf("%w: record %d follows %d", ErrCorrupt, e.seq, *prev)
	}
	*prev = e.seq
	return Record{Seq: e.seq, Data: msg.Data()}, done, nil
}

// dropConsumer deletes a read's consumer. A failure is harmless: the server
// removes an idle consumer after jsReaderIdle anyway.
func (s *JetStream) dropConsumer(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = s.stream.DeleteConsumer(ctx, name)
}
