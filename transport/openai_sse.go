package transport

import (
	"encoding/json"
	"net/http"
	"time"
)

// sseWriter writes server-sent events to one HTTP response, flushing after each.
// A write that fails (the client went away) stops later writes; the answer goes on
// without the client.
type sseWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	failed bool
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// start sends the headers of an event stream.
func (s *sseWriter) start() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	s.flush()
}

// data sends v as the data of an unnamed event.
func (s *sseWriter) data(v any) {
	s.event("", v)
}

// event sends v as the data of an event named name ("": unnamed).
func (s *sseWriter) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	buf := make([]byte, 0, len(data)+len(name)+16)
	if name != "" {
		buf = append(append(append(buf, "event: "...), name...), '\n')
	}
	buf = append(append(append(buf, "data: "...), data...), "\n\n"...)
	s.write(buf)
}

// done sends the [DONE] sentinel that ends a chat completion stream.
func (s *sseWriter) done() {
	s.write([]byte("data: [DONE]\n\n"))
}

func (s *sseWriter) write(b []byte) {
	if s.failed {
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.failed = true
		return
	}
	s.flush()
}

func (s *sseWriter) flush() {
	if err := s.rc.Flush(); err != nil {
		s.failed = true
	}
}

func nowUnix() int64 { return time.Now().Unix() }
