package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
)

// SessionHeader names a session on a chat completion request: the client sends
// only the new messages and the session holds the rest. Every answer of the
// OpenAI-compatible API carries it, naming the session that answered.
const SessionHeader = "X-Stated-Session"

// MaxOpenAIBody bounds the body of a request to the OpenAI-compatible API and one
// message of its WebSocket mode; a larger one gets 413.
const MaxOpenAIBody = 8 << 20

// openaiAPI serves the OpenAI-compatible HTTP API (chat completions, responses,
// conversations) and the Responses API's WebSocket mode on top of sessions. Its
// mappings from OpenAI's IDs and from stateless histories to sessions live in the
// KV space, so they survive a restart.
type openaiAPI struct {
	srv      *Server
	sessions *session.Manager
	index    *openaiIndex
	log      *slog.Logger

	// mu guards sockets and shut.
	mu      sync.Mutex
	sockets map[*responsesSocket]struct{}
	shut    bool
	wg      sync.WaitGroup // one per socket
}

func newOpenAIAPI(s *Server) *openaiAPI {
	kv := s.cfg.KV
	if kv == nil {
		s.log.Warn("the OpenAI-compatible API keeps its response, conversation and " +
			"history IDs in memory: they are lost at restart")
		kv = storage.NewMemoryKV()
	}
	return &openaiAPI{
		srv: s, sessions: s.sessions, index: &openaiIndex{kv: kv}, log: s.log,
		sockets: make(map[*responsesSocket]struct{}),
	}
}

// routes registers the API's handlers on mux.
func (a *openaiAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/chat/completions", a.serveChat)
	mux.HandleFunc("POST /v1/responses", a.serveCreateResponse)
	mux.HandleFunc("GET /v1/responses", a.serveResponsesSocket)
	mux.HandleFunc("GET /v1/responses/{id}", a.serveGetResponse)
	mux.HandleFunc("DELETE /v1/responses/{id}", a.serveDeleteResponse)
	mux.HandleFunc("POST /v1/conversations", a.serveCreateConversation)
	mux.HandleFunc("GET /v1/conversations/{id}", a.serveGetConversation)
	mux.HandleFunc("DELETE /v1/conversations/{id}", a.serveDeleteConversation)
	mux.HandleFunc("POST /v1/conversations/{id}/items", a.serveAddItems)
	mux.HandleFunc("GET /v1/conversations/{id}/items", a.serveListItems)
}

// tenant authenticates a request with the bearer key the WebSocket protocol takes
// (and, for the WebSocket mode, a ticket) and returns the tenant it acts for.
func (a *openaiAPI) tenant(r *http.Request, ticketOK bool) (string, *apiError) {
	p, err := a.srv.authenticate(r, ticketOK)
	switch {
	case errors.Is(err, errUnauthorized):
		return "", &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest,
			Code: "invalid_api_key", Message: "Incorrect API key provided: " + err.Error()}
	case err != nil:
		return "", a.apiErrorOf(err)
	case p.admin:
		return "", &apiError{Status: http.StatusForbidden, Type: typeInvalidRequest,
			Code: "forbidden", Message: "the admin key opens no sessions; use a tenant's key"}
	}
	return p.tenant, nil
}

// decodeBody reads a JSON request body of at most MaxOpenAIBody bytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOpenAIBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest,
			Code:    "request_too_large",
			Message: "the request body is larger than the limit of 8 MiB"}
	case err != nil:
		return invalidRequest("", "the request body could not be read")
	}
	return decodeJSON(body, v)
}

// decodeJSON parses one JSON object into v.
func decodeJSON(data []byte, v any) *apiError {
	if err := json.Unmarshal(data, v); err != nil {
		return invalidRequest("", "We could not parse the JSON body of your request: %v", err)
	}
	return nil
}

// newAPIID returns prefix, an underscore and 128 random bits in hex.
func newAPIID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// turnIDs returns n turn IDs for the new turns of a request: derived from its
// Idempotency-Key header when it has one, so that a retried request is not run
// twice, and random otherwise.
func turnIDs(r *http.Request, n int) []string {
	ids := make([]string, n)
	key := ""
	if r != nil {
		key = r.Header.Get("Idempotency-Key")
	}
	for i := range ids {
		if key == "" {
			ids[i] = newAPIID("turn")
			continue
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", key, i))
		ids[i] = "idem_" + hex.EncodeToString(sum[:16])
	}
	return ids
}

// shutdown closes the WebSocket-mode sockets with 1001 and waits for them to end
// or ctx to expire.
func (a *openaiAPI) shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.shut = true
	socks := make([]*responsesSocket, 0, len(a.sockets))
	for s := range a.sockets {
		socks = append(socks, s)
	}
	a.mu.Unlock()
	for _, s := range socks {
		s.goingAway()
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("transport: responses sockets still open at shutdown deadline")
	}
}
