package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// Default limits, used when the Options field is zero or negative.
const (
	DefaultMaxCacheEntries = 100000
	DefaultMaxBodyBytes    = 32 << 20
)

// Options configure a Server. The zero value is a working simulator.
type Options struct {
	// Replies are the recorded conversations to answer from. Nil: every answer is
	// generated.
	Replies *Replies
	// Clock tells the time cache entries expire by. Nil: the wall clock.
	Clock Clock
	// Rules are the caching rules by model ID or model ID prefix. Nil: the
	// built-in table (DefaultRules).
	Rules map[string]Rules
	// MaxCacheEntries bounds the cached prefixes of all API keys together; when
	// full, the entry used least recently is evicted. Zero: 100000.
	MaxCacheEntries int
	// MaxBodyBytes bounds a request body; a larger one gets 413 in the provider's
	// error format. Zero: 32 MiB.
	MaxBodyBytes int64
	// Logger receives one debug line per request (endpoint, model, status, token
	// counts) and never prompt or answer content or API keys. Nil: no logging.
	Logger *slog.Logger
}

// Server is the provider simulator. It is an http.Handler serving
// POST /v1/messages (Anthropic) and POST /v1/chat/completions (OpenAI); it is
// safe for concurrent use.
type Server struct {
	replies *Replies
	clock   Clock
	rules   map[string]Rules
	cache   *promptCache
	tokens  *tokenCounter
	maxBody int64
	log     *slog.Logger
}

// New returns a Server configured by opts, with zero fields set to their
// documented defaults.
func New(opts Options) *Server {
	s := &Server{
		replies: opts.Replies,
		clock:   opts.Clock,
		rules:   opts.Rules,
		maxBody: opts.MaxBodyBytes,
		log:     opts.Logger,
		tokens:  newTokenCounter(),
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
	maxEntries := opts.MaxCacheEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxCacheEntries
	}
	s.cache = newPromptCache(maxEntries)
	return s
}

// ServeHTTP routes a request to the endpoint of its path. Unknown paths get 404
// and other methods 405, in the Anthropic error format when the request carries
// Anthropic headers and in the OpenAI format otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	anthropic := r.URL.Path == messagesPath ||
		(r.URL.Path != chatPath && (r.Header.Get("x-api-key") != "" ||
			r.Header.Get("anthropic-version") != ""))
	var e *apiError
	switch {
	case r.URL.Path != messagesPath && r.URL.Path != chatPath:
		e = &apiError{status: http.StatusNotFound, kind: "not_found_error",
			message: "Not Found"}
	case r.Method != http.MethodPost:
		e = &apiError{status: http.StatusMethodNotAllowed, kind: "invalid_request_error",
			message: fmt.Sprintf("Method %s not allowed", r.Method)}
	case anthropic:
		s.serveMessages(w, r)
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
	messagesPath = "/v1/messages"
	chatPath     = "/v1/chat/completions"
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
