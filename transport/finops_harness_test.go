package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

// testAdminKey is the admin key of the FinOps test nodes.
const testAdminKey = "admin-key-for-tests-0123456789"

// finOpts configure a FinOps test node.
type finOpts struct {
	auth      bool
	guard     session.Guard
	provider  providers.Provider // nil: the Anthropic adapter to a real simulator
	model     string             // default claude-sonnet-4-5
	maxTokens int                // default 256
}

// finNode is a stated server with a ledger, budgets and tenants over a real Badger
// directory, serving real HTTP on loopback.
type finNode struct {
	t       *testing.T
	store   *storage.Badger
	ledger  *finops.Ledger
	budgets *finops.Budgets
	tenants *finops.Tenants
	mgr     *session.Manager
	api     *transport.Server
	http    *httptest.Server
	base    string // http://127.0.0.1:port
	url     string // ws://127.0.0.1:port/v1/ws
}

func startFinNode(t *testing.T, o finOpts) *finNode {
	t.Helper()
	if o.provider == nil {
		simSrv := httptest.NewServer(sim.New(sim.Options{}))
		t.Cleanup(simSrv.Close)
		o.provider = anthropic.New(anthropic.Config{BaseURL: simSrv.URL, APIKey: "test"})
	}
	if o.model == "" {
		o.model = "claude-sonnet-4-5"
	}
	if o.maxTokens == 0 {
		o.maxTokens = 256
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.KV()
	if err != nil {
		t.Fatal(err)
	}
	n := &finNode{t: t, store: store, ledger: finops.NewLedger(kv, quiet),
		tenants: finops.NewTenants(kv)}
	n.budgets = finops.NewBudgets(kv, n.ledger, quiet)
	prices := finops.DefaultPrices()
	n.mgr, err = session.NewManager(session.Config{
		Model: o.model, MaxTokens: o.maxTokens, Logger: quiet, Ledger: n.ledger,
		Budgets: n.budgets, Guard: o.guard,
		Cost: func(model string, u providers.Usage) (float64, error) {
			return prices.Cost(model, finops.Tokens{Input: u.InputTokens,
				CacheWrite5m: u.CacheWrite5mTokens, CacheWrite1h: u.CacheWrite1hTokens,
				CacheRead: u.CacheReadTokens, Output: u.OutputTokens})
		},
	}, store, o.provider)
	if err != nil {
		t.Fatal(err)
	}
	n.api, err = transport.NewServer(transport.Config{
		Logger: quiet, Auth: o.auth, Tenants: n.tenants, AdminKey: testAdminKey,
		Ledger: n.ledger, Budgets: n.budgets, KV: kv,
	}, n.mgr)
	if err != nil {
		t.Fatal(err)
	}
	n.http = httptest.NewServer(n.api)
	n.base = n.http.URL
	n.url = "ws" + strings.TrimPrefix(n.base, "http") + "/v1/ws"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.api.Shutdown(ctx)
		n.http.Close()
		n.mgr.Close(ctx)
		store.Close()
	})
	return n
}

// tenantKey creates tenant (if new) and returns a new API key of it.
func (n *finNode) tenantKey(tenant string) string {
	n.t.Helper()
	ctx := context.Background()
	if _, err := n.tenants.Get(ctx, tenant); err != nil {
		if _, err := n.tenants.Create(ctx, tenant); err != nil {
			n.t.Fatal(err)
		}
	}
	key, _, err := n.tenants.IssueKey(ctx, tenant, "test")
	if err != nil {
		n.t.Fatal(err)
	}
	return key
}

// dial opens a WebSocket with key as bearer (none when empty) and query appended
// to the URL; it returns the handshake's status when the dial fails.
func (n *finNode) dial(key, query string) (*rawConn, int) {
	n.t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}}
	ws, resp, err := d.Dial(n.url+query, h)
	if err != nil {
		if resp == nil {
			n.t.Fatalf("dial: %v", err)
		}
		return nil, resp.StatusCode
	}
	n.t.Cleanup(func() { ws.Close() })
	return &rawConn{t: n.t, ws: ws}, http.StatusSwitchingProtocols
}

// mustDial opens a WebSocket that must be accepted.
func (n *finNode) mustDial(key string) *rawConn {
	n.t.Helper()
	c, status := n.dial(key, "")
	if c == nil {
		n.t.Fatalf("handshake refused with %d", status)
	}
	return c
}

// do sends an HTTP request with key as bearer and returns the status and body.
func (n *finNode) do(method, path, key, body string, header ...string) (int, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// usage reads a usage report as JSON.
func (n *finNode) usage(path, key string) finops.Report {
	n.t.Helper()
	status, body := n.do("GET", path, key, "")
	if status != http.StatusOK {
		n.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var r finops.Report
	if err := json.Unmarshal(body, &r); err != nil {
		n.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return r
}

// waitCalls polls a session's usage until it has calls booked entries.
func (n *finNode) waitCalls(session, key string, calls int64) finops.Report {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := n.usage("/v1/sessions/"+session+"/usage", key)
		if r.Total.Calls >= calls {
			return r
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("session %s has %d booked calls, want %d", session, r.Total.Calls, calls)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateProvider holds every request until its gate is closed.
type gateProvider struct {
	providers.Provider
	gate chan struct{}
}

func (p *gateProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	select {
	case <-p.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Provider.Complete(ctx, req, onDelta)
}
