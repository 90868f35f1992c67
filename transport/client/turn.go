package client

import (
	"context"
	"errors"
	"time"

	"github.com/stated-dev/stated/transport/wire"
)

// Delta is a piece of the answer in flight, given to the caller once: after a
// reconnect, only what the caller has not seen yet is passed on.
type Delta struct {
	Seq      uint64
	Text     string          // a piece of text, or empty
	ToolCall *wire.DeltaCall // a piece of a tool call, or nil
}

// Ask sends a user turn and returns the answer event once it is durable, calling
// onDelta (if not nil) with the answer's pieces as they stream. A server error
// about the turn is returned as *ServerError.
func (s *Session) Ask(ctx context.Context, text string, onDelta func(Delta)) (*wire.Event, error) {
	f := &wire.ClientFrame{Type: wire.TypeTurn, TurnID: newTurnID(), Text: text}
	return s.turn(ctx, []*wire.ClientFrame{f}, onDelta)
}

// SendToolResults sends the results of the last answer's tool calls, one frame
// each, and returns the answer that follows them.
func (s *Session) SendToolResults(ctx context.Context, results []ToolResult,
	onDelta func(Delta)) (*wire.Event, error) {
	frames := make([]*wire.ClientFrame, len(results))
	for i, r := range results {
		frames[i] = &wire.ClientFrame{Type: wire.TypeToolResult, TurnID: newTurnID(),
			ToolCallID: r.ToolCallID, Content: r.Content, IsError: r.IsError}
	}
	return s.turn(ctx, frames, onDelta)
}

// turn sends frames one after another, each once it knows the previous one is
// durable, and waits for the answer after the last. Across reconnects it resends
// only what the server has not stored; the server drops a repeated turn ID, so a
// turn is never run twice.
func (s *Session) turn(ctx context.Context, frames []*wire.ClientFrame,
	onDelta func(Delta)) (*wire.Event, error) {
	if s.closed {
		return nil, ErrClosed
	}
	t := &turnState{s: s, frames: frames, onDelta: onDelta}
	for {
		answer, err := t.step(ctx)
		if answer != nil || err == nil {
			return answer, nil
		}
		if err := t.retryLater(ctx, err); err != nil {
			return nil, err
		}
		if !errors.Is(err, errConnLost) && !errors.Is(err, errRetryLater) {
			return nil, err
		}
		if err := s.reconnect(ctx); err != nil {
			return nil, err
		}
		t.sent = t.acked // frames sent but not acknowledged are sent again
	}
}

// turnState is the progress of one turn.
type turnState struct {
	s       *Session
	frames  []*wire.ClientFrame
	onDelta func(Delta)
	acked   int    // frames known durable
	sent    int    // frames sent on the current connection
	ackSeq  uint64 // seq of the last durable frame of this turn
	busy    bool   // the server was busy: resend after the answer in flight
	// refused is the last retryable refusal of a frame of the turn, and
	// refusals how many came.
	refused  *ServerError
	refusals int
}

// maxTurnRefusals bounds how often a turn is sent again after a retryable
// refusal before the refusal is returned.
const maxTurnRefusals = 8

// errRetryLater means a frame of the turn was refused with an error a retry can
// help; the turn reconnects and sends it again.
var errRetryLater = errors.New("client: refused for now")

// retryLater waits before a turn refused with errRetryLater is tried again,
// longer each time, and returns the refusal once there were too many. Other
// errors pass.
func (t *turnState) retryLater(ctx context.Context, err error) error {
	if !errors.Is(err, errRetryLater) {
		return nil
	}
	t.refusals++
	if t.refusals > maxTurnRefusals {
		return t.refused
	}
	t.s.dropConn()
	wait := min(50*time.Millisecond<<t.refusals, 2*time.Second)
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// step runs the turn on the current connection until the answer arrives (returned)
// or the connection is lost (errConnLost).
func (t *turnState) step(ctx context.Context) (*wire.Event, error) {
	s := t.s
	for {
		if t.sent == t.acked && t.acked < len(t.frames) && !t.busy {
			if err := s.send(t.frames[t.acked]); err != nil {
				return nil, err
			}
			t.sent++
		}
		f, err := s.next(ctx)
		if err != nil {
			return nil, err
		}
		if answer, err := t.onFrame(f); answer != nil || err != nil {
			return answer, err
		}
	}
}

// onFrame applies one frame to the turn. It returns the answer when it arrives, or
// an error that ends the turn.
func (t *turnState) onFrame(f *wire.ServerFrame) (*wire.Event, error) {
	s := t.s
	switch f.Type {
	case wire.TypeAck:
		t.ack(f.TurnID, f.Seq, nil)
	case wire.TypeEvent:
		e := f.Event
		if e == nil {
			return nil, nil
		}
		if e.Kind != "assistant" {
			t.ack(e.TurnID, e.Seq, e)
			return nil, nil
		}
		if t.busy {
			t.busy = false // the answer that made the server busy is done
			return nil, nil
		}
		if t.acked == len(t.frames) && e.Seq > t.ackSeq {
			return e, nil
		}
	case wire.TypeDelta, wire.TypePartial:
		if t.acked == len(t.frames) && f.Seq > t.ackSeq {
			s.relay(f, t.onDelta)
		}
	case wire.TypeError:
		if f.Code == wire.CodeBusy && t.acked < len(t.frames) {
			t.busy = true
			t.sent = t.acked
			return nil, nil
		}
		if f.Retry && t.owns(f.TurnID) {
			// Nothing was acknowledged (the node is stopping, or the session
			// moved): send the turn again, on a new connection, a little later.
			t.refused = &ServerError{Code: f.Code, Message: f.Message, Retry: f.Retry}
			return nil, errRetryLater
		}
		if f.TurnID == "" || t.owns(f.TurnID) {
			return nil, &ServerError{Code: f.Code, Message: f.Message, Retry: f.Retry}
		}
	case wire.TypeSession:
		s.onSession(f)
	}
	return nil, nil
}

// ack marks the frame with turnID durable at seq. e is the event when the server
// sent it (on resume); otherwise the event is made from the frame.
func (t *turnState) ack(turnID string, seq uint64, e *wire.Event) {
	i := t.acked
	if i >= len(t.frames) || t.frames[i].TurnID != turnID {
		return
	}
	t.acked++
	t.ackSeq = seq
	if e == nil && seq == t.s.lastSeq+1 {
		fr := t.frames[i]
		ev := wire.Event{Seq: seq, Kind: "user", TurnID: fr.TurnID, Text: fr.Text}
		if fr.Type == wire.TypeToolResult {
			ev.Kind, ev.Text = "tool_result", fr.Content
			ev.ToolCallID, ev.IsError = fr.ToolCallID, fr.IsError
		}
		t.s.lastSeq = seq
		t.s.history = append(t.s.history, ev)
	}
}

func (t *turnState) owns(turnID string) bool {
	for _, f := range t.frames {
		if f.TurnID == turnID {
			return true
		}
	}
	return false
}

// relay passes on the part of a delta or partial the caller has not seen.
func (s *Session) relay(f *wire.ServerFrame, onDelta func(Delta)) {
	if f.Seq != s.deliveredSeq {
		s.deliveredSeq, s.delivered = f.Seq, 0
	}
	if f.ToolCall != nil {
		if onDelta != nil && f.Type == wire.TypeDelta {
			onDelta(Delta{Seq: f.Seq, ToolCall: f.ToolCall})
		}
		return
	}
	text, offset := f.Text, f.Offset
	if f.Type == wire.TypePartial {
		offset = 0
	}
	end := offset + len(text)
	if end <= s.delivered || offset > s.delivered {
		return
	}
	fresh := text[s.delivered-offset:]
	s.delivered = end
	if onDelta != nil && fresh != "" {
		onDelta(Delta{Seq: f.Seq, Text: fresh})
	}
}

// Retry asks the server to answer the last turn again after a failed or cut
// answer, and returns the new answer.
func (s *Session) Retry(ctx context.Context, onDelta func(Delta)) (*wire.Event, error) {
	if s.conn == nil {
		if err := s.reconnect(ctx); err != nil {
			return nil, err
		}
	}
	after := s.lastSeq
	if err := s.send(&wire.ClientFrame{Type: wire.TypeRetry}); err != nil {
		return nil, err
	}
	t := &turnState{s: s, onDelta: onDelta, ackSeq: after}
	for {
		answer, err := t.step(ctx)
		if answer != nil || err == nil {
			return answer, nil
		}
		if !errors.Is(err, errConnLost) {
			return nil, err
		}
		if err := s.reconnect(ctx); err != nil {
			return nil, err
		}
	}
}

// Ping sends a protocol ping and waits for the pong, to check the connection.
func (s *Session) Ping(ctx context.Context) error {
	if err := s.send(&wire.ClientFrame{Type: wire.TypePing}); err != nil {
		return err
	}
	for {
		f, err := s.next(ctx)
		if err != nil {
			return err
		}
		if f.Type == wire.TypePong {
			return nil
		}
	}
}

// Cancel asks the server to stop the answer in flight; the answer then arrives with
// status "aborted". It may be called from an onDelta callback of the running call.
func (s *Session) Cancel() error {
	return s.send(&wire.ClientFrame{Type: wire.TypeCancel})
}
