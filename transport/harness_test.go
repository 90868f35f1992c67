package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

// slowProvider wraps a real provider and holds each delta for a while, so tests can
// act in the middle of an answer.
type slowProvider struct {
	providers.Provider
	mu    sync.Mutex
	delay time.Duration
}

func (p *slowProvider) setDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

func (p *slowProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	p.mu.Lock()
	d := p.delay
	p.mu.Unlock()
	return p.Provider.Complete(ctx, req, func(delta providers.Delta) {
		if d > 0 {
			time.Sleep(d)
		}
		onDelta(delta)
	})
}

// node is a stated server over a real Badger directory, talking HTTP to a real
// simulator.
type node struct {
	t     *testing.T
	dir   string
	sim   *httptest.Server
	prov  *slowProvider
	store *storage.Badger
	mgr   *session.Manager
	api   *transport.Server
	http  *httptest.Server
	url   string // ws://.../v1/ws
}

func startNode(t *testing.T, cfg transport.Config) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir()}
	n.sim = httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(n.sim.Close)
	n.prov = &slowProvider{Provider: anthropic.New(anthropic.Config{BaseURL: n.sim.URL,
		APIKey: "test"})}
	n.start(cfg)
	return n
}

func (n *node) start(cfg transport.Config) {
	n.t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(n.dir))
	if err != nil {
		n.t.Fatal(err)
	}
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5", MaxTokens: 256,
		Logger: quiet}, store, n.prov)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg.Logger = quiet
	api, err := transport.NewServer(cfg, mgr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.store, n.mgr, n.api = store, mgr, api
	n.http = httptest.NewServer(api)
	n.url = "ws" + strings.TrimPrefix(n.http.URL, "http") + "/v1/ws"
	n.t.Cleanup(n.stop)
}

// stop shuts the node down in order; calling it twice is harmless.
func (n *node) stop() {
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

// restart stops the node and starts it again on the same data directory, at a new
// address.
func (n *node) restart() {
	n.stop()
	n.start(transport.Config{})
}

// rawConn is a WebSocket speaking frames by hand, for protocol tests.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	return &rawConn{t: t, ws: ws}
}

func (c *rawConn) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) read() *wire.ServerFrame {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	f := new(wire.ServerFrame)
	if err := json.Unmarshal(data, f); err != nil {
		c.t.Fatal(err)
	}
	return f
}

// until reads frames until one of type typ arrives, and returns it.
func (c *rawConn) until(typ string) *wire.ServerFrame {
	c.t.Helper()
	for {
		if f := c.read(); f.Type == typ {
			return f
		}
	}
}

// answer reads frames until an answer event arrives.
func (c *rawConn) answer() *wire.Event {
	c.t.Helper()
	for {
		f := c.until(wire.TypeEvent)
		if f.Event.Kind == "assistant" {
			return f.Event
		}
	}
}

func (c *rawConn) open() *wire.ServerFrame {
	c.t.Helper()
	c.send(`{"type":"open"}`)
	return c.until(wire.TypeSession)
}

func httpStatus(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// cutProxy forwards TCP connections to a server and can cut them all at once, as a
// network failure would.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { io.Copy(in, out); in.Close() }()
	}
}

// cut closes every connection made so far.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// url is the proxy's WebSocket URL.
func (p *cutProxy) url() string {
	return "ws://" + p.ln.Addr().String() + "/v1/ws"
}
