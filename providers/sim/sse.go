package sim

import (
	"encoding/json"
	"net/http"
)

// sseWriter writes a server-sent event stream and flushes after every event. Once
// a write fails or the client has gone, later writes do nothing and err says why.
type sseWriter struct {
	w   http.ResponseWriter
	r   *http.Request
	rc  *http.ResponseController
	err error
	buf []byte
}

// newSSE starts an event stream: headers and status 200.
func newSSE(w http.ResponseWriter, r *http.Request) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, r: r, rc: http.NewResponseController(w)}
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

// raw writes one event whose data is given as is.
func (s *sseWriter) raw(name string, data []byte) {
	if s.err != nil {
		return
	}
	if err := s.r.Context().Err(); err != nil {
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
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
	}
}
