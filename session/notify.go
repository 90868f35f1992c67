package session

import (
	"time"

	"github.com/stated-dev/stated/providers"
)

// NoteKind says what a Note carries.
type NoteKind uint8

const (
	// NoteSubscribed opens every subscription: Resume says where the subscriber
	// stands. The catch-up events follow it.
	NoteSubscribed NoteKind = iota + 1
	// NoteAck tells the subscriber that submitted a turn that the turn is durable;
	// Event is the stored turn. Duplicate is set when the turn ID had been seen and
	// the turn was not run again.
	NoteAck
	// NoteEvent carries a durable event: a turn another subscriber submitted, or an
	// answer.
	NoteEvent
	// NoteDelta carries a piece of the answer in flight, whose seq will be Seq.
	NoteDelta
	// NotePartial carries everything the answer in flight has said so far: sent on
	// subscribe, before the live deltas that follow it.
	NotePartial
	// NoteClosed tells the subscriber it has been dropped (Err says why); nothing
	// follows it.
	NoteClosed
)

// Note is one thing a subscriber is told, in the order the session decided it.
type Note struct {
	Kind      NoteKind
	Event     *Event // NoteAck, NoteEvent; shared: read only
	Duplicate bool   // NoteAck
	Seq       uint64 // NoteDelta, NotePartial: the seq the answer will have
	Delta     providers.Delta
	Offset    int // NoteDelta with text: byte offset of Delta.Text in the answer
	// Ready is, for NoteDelta, when the session could pass the delta on: the later
	// of Delta.At and the moment the turn it answers became durable (no delta
	// precedes its turn's ack). Zero when Delta.At is.
	Ready   time.Time
	Partial *Partial
	Err     error   // NoteClosed
	Resume  *Resume // NoteSubscribed
}

// Partial is the answer in flight, as far as it got.
type Partial struct {
	Seq       uint64
	Text      string
	ToolCalls []providers.ToolCall
}

// Subscriber receives a session's notes. Deliver is called with the session's lock
// held, in order, and must not block: it queues the note and returns. A subscriber
// that cannot keep up should drop itself (its client can resume) rather than slow
// the session down.
type Subscriber interface {
	Deliver(n Note)
}
