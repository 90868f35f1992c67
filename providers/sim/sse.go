package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Reasons a stream stops early.
var (
	errStreamCut   = errors.New("sim: stream cut by a fault")
	errStreamEnded = errors.New("sim: stream ended by a fault")
	errClientGone  = errors.New("sim: client gone")
)

// streamPlan is how a stream misbehaves and how fast it goes: the request's
// fault and the latency model's output rate.
type streamPlan struct {
	fault    Fault
	perToken time.Duration // pacing of deltas; zero: none
	// errorEvent returns the provider's error event, given the number of events
	// sent before it.
	errorEvent func(sent int) (name string, data any)
}

// sseWriter writes a server-sent event stream and flushes after every event,
// following its plan. Once a write fails, the client has gone or a fault ended
// the stream, later writes do nothing and err says why.
type sseWriter struct {
	x    *exchange
	w    http.ResponseWriter
	rc   *http.ResponseController
	plan streamPlan
	sent int // events written
	err  error
	buf  []byte
}

// stream starts the exchange's event stream: headers and status 200.
func (x *exchange) stream(errorEvent func(sent int) (string, any)) *sseWriter {
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	x.w.WriteHeader(http.StatusOK)
	plan := streamPlan{fault: x.fault, errorEvent: errorEvent,
		perToken: x.s.latency.OutputDelay(1)}
	return &sseWriter{x: x, w: x.w, rc: http.NewResponseController(x.w), plan: plan}
}

// pace waits for the output rate before a delta of text.
func (s *sseWriter) pace(text string) {
	if s.err != nil || s.plan.perToken <= 0 {
		return
	}
	d := s.x.s.latency.OutputDelay(s.x.s.tokens.count(text))
	if !s.x.s.wait(s.x.r.Context(), d) {
		s.err = errClientGone
	}
}

// event writes one event: an "event:" line when name is not empty, then v as
// JSON on one "data:" line.
func (s *sseWriter) event(name string, v any) {
	if s.err != nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	s.raw(name, data)
}

// raw writes one event whose data is given as is, after the fault of the plan
// has had its say.
func (s *sseWriter) raw(name string, data []byte) {
	if s.err != nil {
		return
	}
	if s.misbehave() {
		return
	}
	s.write(name, data)
}

// misbehave applies the plan's fault before the next event and reports whether
// the event must not be sent.
func (s *sseWriter) misbehave() bool {
	f := s.plan.fault
	ctx := s.x.r.Context()
	switch {
	case f.Kind == FaultDrip:
		if !s.x.s.wait(ctx, f.Interval) {
			s.err = errClientGone
		}
	case s.sent != f.After:
	case f.Kind == FaultCut:
		s.x.cut()
		s.err = errStreamCut
	case f.Kind == FaultStall:
		s.x.stall()
		s.err = errClientGone
	case f.Kind == FaultErrorEvent && s.plan.errorEvent != nil:
		name, v := s.plan.errorEvent(s.sent)
		if data, err := json.Marshal(v); err == nil {
			s.write(name, data)
		}
		s.err = errStreamEnded
	}
	return s.err != nil
}

func (s *sseWriter) write(name string, data []byte) {
	if err := s.x.r.Context().Err(); err != nil {
		s.err = err
		return
	}
	s.buf = s.buf[:0]
	if name != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, name...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	s.sent++
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
	}
}
