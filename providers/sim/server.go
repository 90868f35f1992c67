package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Default limits, used when the Options field is zero.
const (
	DefaultMaxCacheEntries    = 100000
	DefaultMaxBodyBytes       = 32 << 20
	DefaultMaxCaptures        = 256
	DefaultMaxStoredResponses = 1000
)

// Options configure a Server. The zero value is a working simulator: no latency,
// no faults, the built-in rules, the wall clock.
type Options struct {
	// Replies are the recorded conversations to answer from. Nil: every answer is
	// generated.
	Replies *Replies
	// Clock tells the time cache entries expire by. Nil: the wall clock. A clock
	// with an Advance(time.Duration) method (ManualClock) can also be moved over
	// HTTP with POST /_sim/clock.
	Clock Clock
	// Rules are the caching rules by model ID or model ID prefix. Nil: the
	// built-in table (DefaultRules).
	Rules map[string]Rules
	// MaxCacheEntries bounds the cached prefixes of all API keys together; when
	// full, the entry used least recently is evicted. Zero or negative: 100000.
	MaxCacheEntries int
	// MaxBodyBytes bounds a request body; a larger one gets 413 in the provider's
	// error format. Zero or negative: 32 MiB.
	MaxBodyBytes int64
	// Latency delays answers as a provider's prefill and decoding would. Zero: no
	// delay.
	Latency Latency
	// Faults are injected into the given fractions of requests, drawn in the
	// order requests arrive. A request's x-sim-fault header overrides them.
	Faults []FaultRule
	// FaultSeed seeds the draws: the same seed and the same sequence of requests
	// give the same faults. Zero: a random seed.
	FaultSeed uint64
	// MaxCaptures is how many requests Captured keeps, the latest ones. Zero:
	// 256. Negative: none are kept.
	MaxCaptures int
	// MaxStoredResponses bounds the Responses API responses kept for
	// previous_response_id (those created with store true); the oldest is
	// dropped first. Zero or negative: 1000.
	MaxStoredResponses int
	// Logger receives one debug line per request (endpoint, model, status, token
	// counts, fault) and never prompt or answer content or API keys. Nil: no
	// logging.
	Logger *slog.Logger
}

// Server is the provider simulator. It is an http.Handler serving
// POST /v1/messages (Anthropic), POST /v1/chat/completions and POST
// /v1/responses (OpenAI), and the test controls under /_sim/ (see control.go).
// It is safe for concurrent use.
type Server struct {
	replies   *Replies
	clock     Clock
	rules     map[string]Rules
	cache     *promptCache
	tokens    *tokenCounter
	maxBody   int64
	latency   Latency
	faults    *faultPicker
	captures  *captureLog
	responses *responseStore
	log       *slog.Logger

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: ends stalls and waits
}

// New returns a Server configured by opts, with zero fields set to their
// documented defaults. New does not check opts: call Options.Validate first for
// options that come from outside the program.
func New(opts Options) *Server {
	s := &Server{
		replies: opts.Replies,
		clock:   opts.Clock,
		rules:   opts.Rules,
		maxBody: opts.MaxBodyBytes,
		latency: opts.Latency,
		log:     opts.Logger,
		tokens:  newTokenCounter(),
		closed:  make(chan struct{}),
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.rules == nil {
		s.rules = DefaultRules()
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.cache = newPromptCache(positiveOr(opts.MaxCacheEntries, DefaultMaxCacheEntries))
	s.faults = newFaultPicker(opts.Faults, opts.FaultSeed)
	captures := opts.MaxCaptures
	if captures == 0 {
		captures = DefaultMaxCaptures
	}
	s.captures = newCaptureLog(captures)
	s.responses = newResponseStore(positiveOr(opts.MaxStoredResponses,
		DefaultMaxStoredResponses))
	return s
}

// positiveOr returns n, or def when n is zero or negative.
func positiveOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Close releases every request held by a stall fault or by the latency model
// and makes later ones return at once, so that an HTTP server serving s can shut
// down. It does not stop that server, and s still answers afterwards. Close is
// idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// ServeHTTP routes a request to the endpoint of its path. Unknown paths get 404
// and other methods 405, in the Anthropic error format when the request carries
// Anthropic headers and in the OpenAI format otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	known := r.URL.Path == messagesPath || r.URL.Path == chatPath ||
		r.URL.Path == responsesPath
	anthropic := r.URL.Path == messagesPath || (!known &&
		(r.Header.Get("x-api-key") != "" || r.Header.Get("anthropic-version") != ""))
	var e *apiError
	switch {
	case !known:
		e = &apiError{status: http.StatusNotFound, kind: "not_found_error",
			message: "Not Found"}
	case r.Method != http.MethodPost:
		e = &apiError{status: http.StatusMethodNotAllowed, kind: "invalid_request_error",
			message: fmt.Sprintf("Method %s not allowed", r.Method)}
	case anthropic:
		s.serveMessages(w, r)
		return
	case r.URL.Path == responsesPath:
		s.serveResponses(w, r)
		return
	default:
		s.serveChat(w, r)
		return
	}
	if anthropic {
		writeAnthropicError(w, e)
	} else {
		writeOpenAIError(w, e)
	}
}

const (
	messagesPath  = "/v1/messages"
	chatPath      = "/v1/chat/completions"
	responsesPath = "/v1/responses"
)

// apiError is a failure answered to the client in the provider's error format.
type apiError struct {
	status  int
	kind    string // the provider's error type, e.g. invalid_request_error
	message string
	param   string // OpenAI only; "" is sent as null
	code    string // OpenAI only; "" is sent as null
}

func invalidRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, kind: "invalid_request_error",
		message: fmt.Sprintf(format, args...)}
}

// errBodyTooLarge is returned by readBody when the body passes the limit.
var errBodyTooLarge = errors.New("sim: request body too large")

// readBody reads the whole body up to the server's limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errBodyTooLarge
	}
	return body, err
}

// newID returns a random identifier with the given prefix, in the style of the
// providers' message and request IDs.
func newID(prefix string) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 24)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return prefix + string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }
