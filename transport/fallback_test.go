package transport_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

// startFallbackNode starts a node whose "claude-broken" models get 529 from a
// server that is always overloaded, and whose other claude models are answered
// by the simulator, with retries and fallback wired as the daemon wires them.
func startFallbackNode(t *testing.T) (*node, *atomic.Int32) {
	t.Helper()
	var overloaded atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		overloaded.Add(1)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(529)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error",`+
			`"message":"Overloaded"}}`)
	}))
	t.Cleanup(broken.Close)

	n := &node{t: t, dir: t.TempDir()}
	n.sim = httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(n.sim.Close)
	router := providers.NewRouter(
		providers.Route{Prefixes: []string{"claude-broken"},
			Provider: anthropic.New(anthropic.Config{BaseURL: broken.URL, APIKey: "k"})},
		providers.Route{Prefixes: []string{"claude"},
			Provider: anthropic.New(anthropic.Config{BaseURL: n.sim.URL, APIKey: "k"})},
	)
	retrier := providers.NewRetrier(router, providers.RetryPolicy{
		Attempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Second})
	n.prov = &slowProvider{Provider: providers.NewFallback(retrier, nil, nil)}
	n.start(transport.Config{})
	return n, &overloaded
}

func TestAnOverloadedModelFallsBackToTheSessionsNextModel(t *testing.T) {
	n, overloaded := startFallbackNode(t)
	c := dialRaw(t, n.url)
	c.send(`{"type":"open","model":"claude-broken-1",` +
		`"fallback_models":["claude-sonnet-4-5"]}`)
	c.until(wire.TypeSession)
	c.send(`{"type":"turn","turn_id":"t1","text":"Hello?"}`)

	e := c.answer()
	if e.Status != "complete" || !strings.HasPrefix(e.Model, "claude-sonnet-4-5") {
		t.Fatalf("answer %+v, want a complete answer from claude-sonnet-4-5", e)
	}
	if got := overloaded.Load(); got != 2 {
		t.Fatalf("the overloaded model was asked %d times, want 2 (one retry)", got)
	}
}

func TestAnOpenWithABadFallbackListIsInvalid(t *testing.T) {
	n, _ := startFallbackNode(t)
	c := dialRaw(t, n.url)
	c.send(`{"type":"open","model":"claude-sonnet-4-5",` +
		`"fallback_models":["claude-haiku-4-5","claude-haiku-4-5"]}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeInvalid {
		t.Fatalf("got %+v, want %s", f, wire.CodeInvalid)
	}
}

func TestWithoutAFallbackListTheOverloadIsStoredAsAFailedAnswer(t *testing.T) {
	n, _ := startFallbackNode(t)
	c := dialRaw(t, n.url)
	c.send(`{"type":"open","model":"claude-broken-1"}`)
	c.until(wire.TypeSession)
	c.send(`{"type":"turn","turn_id":"t1","text":"Hello?"}`)
	if e := c.answer(); e.Status != "failed" || e.ErrorCode != "provider_unavailable" {
		t.Fatalf("answer %+v, want failed with provider_unavailable", e)
	}
}
