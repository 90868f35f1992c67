package providers_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
)

// waveGate holds each request until size of them have arrived, so that a wave
// of answers is truly concurrent: each needs a connection of its own.
type waveGate struct {
	mu      sync.Mutex // guards arrived and open
	size    int
	arrived int
	open    chan struct{}
	late    atomic.Int64 // requests that gave up waiting for their wave
}

func newWaveGate(size int) *waveGate {
	return &waveGate{size: size, open: make(chan struct{})}
}

func (g *waveGate) wait() {
	g.mu.Lock()
	open := g.open
	g.arrived++
	if g.arrived == g.size {
		close(open)
		g.open, g.arrived = make(chan struct{}), 0
	}
	g.mu.Unlock()
	select {
	case <-open:
	case <-time.After(10 * time.Second):
		g.late.Add(1)
	}
}

// countedSimulator is the simulator behind a gate, on a loopback server that
// counts the connections it accepts.
func countedSimulator(t *testing.T, gate *waveGate) (string, *atomic.Int64) {
	t.Helper()
	simulator := sim.New(sim.Options{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			gate.wait()
			simulator.ServeHTTP(w, r)
		}))
	var accepted atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, &accepted
}

// answerWave runs n concurrent answers through p and fails the test if any fails.
func answerWave(t *testing.T, p providers.Provider, model string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &providers.Request{Model: model, MaxTokens: 50,
				Messages: []providers.Message{{Role: providers.RoleUser, Text: "Hello?"}}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := p.Complete(ctx, req, func(providers.Delta) {}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestUpstreamClientReusesConnectionsAcrossConcurrentAnswers(t *testing.T) {
	const wave = 16
	adapters := []struct {
		name  string
		model string
		make  func(base string, c *http.Client) providers.Provider
	}{
		{"anthropic", "claude-sonnet-4-5", func(base string, c *http.Client) providers.Provider {
			return anthropic.New(anthropic.Config{BaseURL: base, APIKey: "k", HTTPClient: c})
		}},
		{"openai chat completions", "gpt-4.1",
			func(base string, c *http.Client) providers.Provider {
				return openai.New(openai.Config{BaseURL: base + "/v1", APIKey: "k",
					HTTPClient: c})
			}},
		{"openai responses", "gpt-4.1", func(base string, c *http.Client) providers.Provider {
			return openai.NewResponses(openai.Config{BaseURL: base + "/v1", APIKey: "k",
				HTTPClient: c})
		}},
	}
	pools := []struct {
		name string
		idle int
		// want is the connections accepted over three waves.
		want int64
	}{
		{"the default pool keeps a wave's connections for the next waves", 0, wave},
		{"a pool of two dials all but two again for every wave", 2, wave + 2*(wave-2)},
	}
	for _, a := range adapters {
		for _, pool := range pools {
			t.Run(a.name+"/"+pool.name, func(t *testing.T) {
				gate := newWaveGate(wave)
				base, accepted := countedSimulator(t, gate)
				client, err := providers.NewHTTPClient(providers.HTTPClientOptions{
					IdleConnsPerHost: pool.idle})
				if err != nil {
					t.Fatal(err)
				}
				defer client.CloseIdleConnections()
				p := a.make(base, client)
				for i := 0; i < 3; i++ {
					answerWave(t, p, a.model, wave)
				}
				if n := gate.late.Load(); n > 0 {
					t.Fatalf("%d requests never saw their wave complete", n)
				}
				if got := accepted.Load(); got != pool.want {
					t.Fatalf("%d connections accepted over three waves of %d, want %d",
						got, wave, pool.want)
				}
			})
		}
	}
}

func TestUpstreamClientSettings(t *testing.T) {
	client, err := providers.NewHTTPClient(providers.HTTPClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T, want a dedicated *http.Transport", client.Transport)
	}
	switch {
	case tr == http.DefaultTransport:
		t.Error("the client shares http.DefaultTransport")
	case client.Timeout != 0:
		t.Errorf("client timeout %v: it would cut long streams", client.Timeout)
	case tr.MaxIdleConnsPerHost != providers.DefaultIdleConnsPerHost:
		t.Errorf("idle per host %d, want %d", tr.MaxIdleConnsPerHost,
			providers.DefaultIdleConnsPerHost)
	case tr.IdleConnTimeout != 90*time.Second:
		t.Errorf("idle timeout %v, want 90s", tr.IdleConnTimeout)
	case !tr.ForceAttemptHTTP2:
		t.Error("HTTP/2 is not attempted")
	case tr.Proxy == nil:
		t.Error("no proxy from the environment")
	case tr.TLSHandshakeTimeout <= 0 || tr.DialContext == nil:
		t.Error("the TLS handshake or the dial is unbounded")
	}
}

func TestUpstreamClientOptionsAreBounded(t *testing.T) {
	cases := []struct {
		name string
		opts providers.HTTPClientOptions
		ok   bool
	}{
		{"zero takes the defaults", providers.HTTPClientOptions{}, true},
		{"one idle connection", providers.HTTPClientOptions{IdleConnsPerHost: 1}, true},
		{"the most idle connections", providers.HTTPClientOptions{
			IdleConnsPerHost: providers.MaxIdleConnsPerHost}, true},
		{"negative idle connections", providers.HTTPClientOptions{IdleConnsPerHost: -1}, false},
		{"too many idle connections", providers.HTTPClientOptions{
			IdleConnsPerHost: providers.MaxIdleConnsPerHost + 1}, false},
		{"negative connections per host", providers.HTTPClientOptions{MaxConnsPerHost: -1},
			false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := providers.NewHTTPClient(c.opts)
			if c.ok != (err == nil) || err != nil && !errors.Is(err, providers.ErrInvalidOptions) {
				t.Fatalf("err %v, want ok %v", err, c.ok)
			}
		})
	}
}
