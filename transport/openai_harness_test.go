package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	oaiadapter "github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
)

// The models the OpenAI-compatible API tests use: one answered through the
// OpenAI adapter, one through the Anthropic adapter, both by the simulator.
const (
	gptModel    = "gpt-4.1"
	claudeModel = "claude-sonnet-4-5"
)

// weatherReplies is a recorded conversation the simulator answers from: a tool
// call for the question, then a text answer for the tool's result.
const weatherReplies = `{"id":"weather","messages":[` +
	`{"role":"user","content":"What is the weather in Paris?"},` +
	`{"role":"assistant","content":null,"tool_calls":[{"id":"call_weather_1",` +
	`"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_weather_1","content":"18C and sunny"},` +
	`{"role":"assistant","content":"It is 18°C and sunny in Paris."}]}`

// apiNode is a stated server over a real Badger directory with the OpenAI-compatible
// API, answering through the real adapters from a simulator over HTTP.
type apiNode struct {
	t     *testing.T
	dir   string
	sim   *httptest.Server
	prov  providers.Provider
	kv    storage.KV
	store *storage.Badger
	mgr   *session.Manager
	api   *transport.Server
	http  *httptest.Server
	bytes *byteCounter
	// tenants, when set, turns authentication on.
	tenants *finops.Tenants
}

func startAPINode(t *testing.T) *apiNode {
	t.Helper()
	n := &apiNode{t: t, dir: t.TempDir(), bytes: &byteCounter{}}
	path := filepath.Join(t.TempDir(), "replies.jsonl")
	if err := os.WriteFile(path, []byte(weatherReplies+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replies, err := sim.LoadReplies(path)
	if err != nil {
		t.Fatal(err)
	}
	n.sim = httptest.NewServer(sim.New(sim.Options{Replies: replies}))
	t.Cleanup(n.sim.Close)
	n.prov = providers.NewRouter(
		providers.Route{Prefixes: []string{"claude"}, Provider: anthropic.New(
			anthropic.Config{BaseURL: n.sim.URL, APIKey: "test"})},
		providers.Route{Prefixes: []string{"gpt-"}, Provider: oaiadapter.New(
			oaiadapter.Config{BaseURL: n.sim.URL + "/v1", APIKey: "test"})},
	)
	// The KV outlives the node's restarts, as a durable one does.
	n.kv = storage.NewMemoryKV()
	n.start()
	return n
}

func (n *apiNode) start() {
	n.t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(n.dir))
	if err != nil {
		n.t.Fatal(err)
	}
	mgr, err := session.NewManager(session.Config{Model: gptModel, MaxTokens: 256,
		Logger: quiet}, store, n.prov)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := transport.Config{Logger: quiet, KV: n.kv}
	if n.tenants != nil {
		cfg.Auth, cfg.Tenants = true, n.tenants
	}
	api, err := transport.NewServer(cfg, mgr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.store, n.mgr, n.api = store, mgr, api
	n.http = httptest.NewServer(n.bytes.wrap(api))
	n.t.Cleanup(n.stop)
}

// stop shuts the node down in order; calling it twice is harmless.
func (n *apiNode) stop() {
	if n.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.api.Shutdown(ctx)
	n.http.Close()
	n.mgr.Close(ctx)
	n.store.Close()
	n.http = nil
}

// restart stops the node and starts it again on the same data, at a new address.
func (n *apiNode) restart() {
	n.t.Helper()
	n.stop()
	n.start()
}

// client is an official OpenAI client configured as a user would: base URL and key.
func (n *apiNode) client() openai.Client {
	return n.clientWithKey("sk-test")
}

func (n *apiNode) clientWithKey(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(n.http.URL+"/v1/"),
		option.WithAPIKey(key), option.WithMaxRetries(0))
}

// events returns the log of a session.
func (n *apiNode) events(id string) []session.Event {
	n.t.Helper()
	s, err := n.mgr.Get(context.Background(), "default", id)
	if err != nil {
		n.t.Fatalf("session %s: %v", id, err)
	}
	return s.History(0)
}

// waitEvents polls until the session holds want events.
func (n *apiNode) waitEvents(id string, want int) []session.Event {
	n.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := n.events(id)
		if len(evs) >= want || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// byteCounter records the request bodies a handler received, by path.
type byteCounter struct {
	mu     sync.Mutex
	bodies []recordedBody
}

type recordedBody struct {
	path string
	body []byte
}

func (b *byteCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Method == http.MethodPost {
			data, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(data))
			b.mu.Lock()
			b.bodies = append(b.bodies, recordedBody{path: r.URL.Path, body: data})
			b.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// last returns the last body received on path.
func (b *byteCounter) last(t *testing.T, path string) []byte {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.bodies) - 1; i >= 0; i-- {
		if b.bodies[i].path == path {
			return b.bodies[i].body
		}
	}
	t.Fatalf("no request body on %s", path)
	return nil
}

// longSystem is a system prompt long enough for both providers' prompt caches.
func longSystem() string {
	var b strings.Builder
	b.WriteString("You are the assistant of a travel agency. Follow these rules.\n")
	for i := 0; i < 160; i++ {
		fmt.Fprintf(&b, "Rule %d: when a customer asks about booking %d, check the "+
			"fare class, the date and the seat map before you answer.\n", i, 1000+i*7)
	}
	return b.String()
}

// sessionOf returns the session of a stored response, as GET /v1/responses/{id}
// names it.
func (n *apiNode) sessionOf(t *testing.T, responseID string) string {
	t.Helper()
	resp, err := http.Get(n.http.URL + "/v1/responses/" + responseID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get response %s: %s", responseID, resp.Status)
	}
	return resp.Header.Get(transport.SessionHeader)
}
