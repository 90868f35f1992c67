package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// The test controls, under /_sim/ beside the provider endpoints:
//
//   - GET /_sim/clock: {"now": RFC 3339 time, "manual": bool}.
//   - POST /_sim/clock with {"advance_ms": N}: moves a manual clock (one with an
//     Advance method, such as ManualClock) forward by N milliseconds and answers
//     as GET does; 409 when the clock is not manual.
//   - GET /_sim/requests: the captured requests, oldest first, as a JSON array
//     of Capture.
//   - DELETE /_sim/requests: forgets them (Reset).
//
// Errors are {"error":{"message","type"}} with a 4xx status.
const (
	controlPrefix   = "/_sim/"
	clockPath       = controlPrefix + "clock"
	requestsPath    = controlPrefix + "requests"
	maxControlBody  = 4 << 10
	maxAdvanceMilli = int64(400 * 24 * time.Hour / time.Millisecond)
)

// advancer is a clock that can be moved, such as ManualClock.
type advancer interface {
	Advance(d time.Duration)
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == clockPath && r.Method == http.MethodGet:
		s.writeClock(w)
	case r.URL.Path == clockPath && r.Method == http.MethodPost:
		s.advanceClock(w, r)
	case r.URL.Path == requestsPath && r.Method == http.MethodGet:
		writeControlJSON(w, http.StatusOK, s.Captured())
	case r.URL.Path == requestsPath && r.Method == http.MethodDelete:
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == clockPath || r.URL.Path == requestsPath:
		controlError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	default:
		controlError(w, http.StatusNotFound, "no control at "+r.URL.Path)
	}
}

// advanceClock handles POST /_sim/clock.
func (s *Server) advanceClock(w http.ResponseWriter, r *http.Request) {
	clock, ok := s.clock.(advancer)
	if !ok {
		controlError(w, http.StatusConflict, "sim: the clock is not manual; start the "+
			"simulator with a manual clock to move it")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		controlError(w, http.StatusBadRequest, "sim: could not read the body")
		return
	}
	var req struct {
		AdvanceMS *int64 `json:"advance_ms"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		controlError(w, http.StatusBadRequest, "sim: the body must be {\"advance_ms\": N}")
		return
	}
	if req.AdvanceMS == nil || *req.AdvanceMS < 0 || *req.AdvanceMS > maxAdvanceMilli {
		controlError(w, http.StatusBadRequest, "sim: advance_ms must be a whole number "+
			"of milliseconds from 0 to 400 days")
		return
	}
	clock.Advance(time.Duration(*req.AdvanceMS) * time.Millisecond)
	s.writeClock(w)
}

func (s *Server) writeClock(w http.ResponseWriter) {
	_, manual := s.clock.(advancer)
	writeControlJSON(w, http.StatusOK, map[string]any{
		"now": s.clock.Now().Format(time.RFC3339Nano), "manual": manual})
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client has gone
}

func controlError(w http.ResponseWriter, status int, message string) {
	kind := "invalid_request_error"
	if status == http.StatusNotFound {
		kind = "not_found_error"
	}
	writeControlJSON(w, status, map[string]any{"error": map[string]string{
		"message": message, "type": kind}})
}
