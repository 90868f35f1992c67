package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// answerWait bounds how long a request of the OpenAI-compatible API follows one
// answer, beyond the provider's own timeout.
const answerWait = 15 * time.Minute

// errAnswerLost means the session dropped the subscriber that followed an answer.
var errAnswerLost = errors.New("transport: the session stopped reporting the answer")

// answerSink receives the pieces of an answer as they arrive: text, and pieces of
// tool call number d.Index (ID and Name set on its first piece).
type answerSink interface {
	text(piece string)
	call(d providers.Delta)
}

// noteQueue is a session subscriber that queues notes for one reader. The queue is
// bounded by the answer it follows: deltas of one answer and a few events.
type noteQueue struct {
	// mu guards notes.
	mu    sync.Mutex
	notes []session.Note
	wake  chan struct{} // cap 1: notes were queued
}

// Deliver queues n; it never blocks.
func (q *noteQueue) Deliver(n session.Note) {
	q.mu.Lock()
	q.notes = append(q.notes, n)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *noteQueue) take() []session.Note {
	q.mu.Lock()
	defer q.mu.Unlock()
	notes := q.notes
	q.notes = nil
	return notes
}

// follow waits for the first answer stored after seq after in s and passes its
// pieces to sink as they arrive (sink may be nil). An answer already under way
// when follow starts is passed from its start. It returns a copy of the stored
// answer event, or ctx's error.
func follow(ctx context.Context, s *session.Session, after uint64, sink answerSink) (
	*session.Event, error) {
	q := &noteQueue{wake: make(chan struct{}, 1)}
	s.Subscribe(q, s.Info().Epoch, after)
	defer s.Unsubscribe(q)

	ctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	for {
		for _, n := range q.take() {
			if e, err := passNote(n, after, sink); e != nil || err != nil {
				return e, err
			}
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// passNote passes what n says of the answer after seq after to sink, and returns
// the answer once n carries it.
func passNote(n session.Note, after uint64, sink answerSink) (*session.Event, error) {
	switch n.Kind {
	case session.NoteEvent:
		if n.Event.Seq > after && n.Event.Kind == session.KindAssistant {
			e := *n.Event
			return &e, nil
		}
	case session.NoteClosed:
		return nil, errAnswerLost
	case session.NotePartial:
		if sink == nil || n.Seq <= after {
			return nil, nil
		}
		if n.Partial.Text != "" {
			sink.text(n.Partial.Text)
		}
		for i, c := range n.Partial.ToolCalls {
			sink.call(providers.Delta{Kind: providers.DeltaToolCall, Index: i, ID: c.ID,
				Name: c.Name, Arguments: c.Arguments})
		}
	case session.NoteDelta:
		if sink == nil || n.Seq <= after {
			return nil, nil
		}
		if n.Delta.Kind == providers.DeltaToolCall {
			sink.call(n.Delta)
		} else if n.Delta.Text != "" {
			sink.text(n.Delta.Text)
		}
	}
	return nil, nil
}

// answerAfter returns the first answer stored after seq after, or nil.
func answerAfter(s *session.Session, after uint64) *session.Event {
	for _, e := range s.History(after) {
		if e.Kind == session.KindAssistant {
			return &e
		}
	}
	return nil
}
