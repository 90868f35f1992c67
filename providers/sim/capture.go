package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// Capture is what the simulator recorded of one request to a provider endpoint,
// for tests to check what a client sent.
type Capture struct {
	// Seq numbers the requests of a Server in order of arrival, from 1.
	Seq uint64 `json:"seq"`
	// Time is when the request arrived, by the simulator's Clock.
	Time time.Time `json:"time"`
	// Endpoint is the request's path, such as /v1/messages.
	Endpoint string `json:"endpoint"`
	// Model is the request's model; "" when the body did not parse.
	Model string `json:"model"`
	// KeyHash is the hex SHA-256 of the request's API key; "" without a key.
	KeyHash string `json:"key_hash"`
	// Stream says the request asked for a streamed answer.
	Stream bool `json:"stream"`
	// Breakpoints is how many cache breakpoints the request carries: Anthropic
	// cache_control marks (the top-level one included), OpenAI
	// prompt_cache_breakpoint marks.
	Breakpoints int `json:"breakpoints"`
	// PrefixHashes are, for each breakpoint in prompt order, the hex SHA-256 of
	// the prompt prefix up to and including its block as the simulator lays it
	// out (model, tools, system, messages; never the API key). Two requests whose
	// breakpoints cover the same prefix have the same hash.
	PrefixHashes []string `json:"prefix_hashes"`
	// Fault is the injected fault in text form; "" when none.
	Fault string `json:"fault,omitempty"`
	// Status is the HTTP status answered; zero while the answer is still being
	// written.
	Status int `json:"status"`
	// Body is the request body as received. In JSON it is the body itself when
	// the body is valid JSON, else a string.
	Body []byte `json:"-"`
}

// MarshalJSON writes the capture with its body inline.
func (c Capture) MarshalJSON() ([]byte, error) {
	type plain Capture
	body := json.RawMessage(c.Body)
	if !json.Valid(c.Body) {
		quoted, err := json.Marshal(string(c.Body))
		if err != nil {
			return nil, err
		}
		body = quoted
	}
	return json.Marshal(struct {
		plain
		Body json.RawMessage `json:"body"`
	}{plain(c), body})
}

// hashKey returns the hex SHA-256 of an API key, "" for no key.
func hashKey(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func hexDigest(d digest) string { return hex.EncodeToString(d[:]) }

// captureLog keeps the latest captures, at most max of them.
type captureLog struct {
	max int

	mu   sync.Mutex // guards seq and list
	seq  uint64
	list []*Capture // oldest first
}

func newCaptureLog(max int) *captureLog { return &captureLog{max: max} }

// add records c, giving it the next Seq, and returns the record to complete
// later with setStatus. It returns nil when the log keeps nothing.
func (l *captureLog) add(c Capture) *Capture {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if l.max <= 0 {
		return nil
	}
	c.Seq = l.seq
	rec := &c
	if len(l.list) >= l.max {
		copy(l.list, l.list[1:])
		l.list = l.list[:len(l.list)-1]
	}
	l.list = append(l.list, rec)
	return rec
}

// setStatus records the status answered to rec; nil rec is ignored.
func (l *captureLog) setStatus(rec *Capture, status int, fault string) {
	if rec == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rec.Status = status
	rec.Fault = fault
}

// Captured returns copies of the latest captured requests, oldest first, at
// most Options.MaxCaptures of them.
func (s *Server) Captured() []Capture {
	l := s.captures
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Capture, len(l.list))
	for i, c := range l.list {
		out[i] = *c
		out[i].Body = slices.Clone(c.Body)
		out[i].PrefixHashes = slices.Clone(c.PrefixHashes)
	}
	return out
}

// Reset forgets the captured requests. Seq keeps counting.
func (s *Server) Reset() {
	l := s.captures
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = nil
}
