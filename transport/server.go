// Package transport serves the stated.v1 WebSocket protocol and the HTTP API on top
// of the session package. docs/protocol.md specifies the protocol.
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport/wire"
)

// Config configures a Server. The zero value of each field means its default.
type Config struct {
	// ReadLimit is the largest frame a client may send, in bytes; a larger one
	// closes the connection with 1009. Default 1 MiB.
	ReadLimit int64
	// PingInterval is how often the server pings an idle connection. Default 25s.
	PingInterval time.Duration
	// ReadTimeout is how long a connection may stay silent (no frame, no pong)
	// before it is dropped; any inbound frame refreshes it. Default 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write to a client. Default 10s.
	WriteTimeout time.Duration
	// MaxQueuedFrames bounds the frames waiting to be written to one client; a
	// client that falls further behind is closed with 4000 and may resume.
	// Default 4096.
	MaxQueuedFrames int
	// MaxQueuedBytes bounds the bytes of the frames waiting to be written to one
	// client, the frame being written included; a client past it is closed with
	// 4000 like one past MaxQueuedFrames. Default 64 MiB.
	MaxQueuedBytes int64
	// AllowedOrigins lists the Origin values (scheme://host[:port]) accepted besides
	// the server's own host. A request without Origin (not from a browser) is
	// always accepted. "*" accepts any origin.
	AllowedOrigins []string
	// Tenant is the tenant every connection acts for when Auth is off. Default
	// "default".
	Tenant string
	// Auth requires an API key (or a ticket) on the WebSocket handshake and the
	// HTTP API; see auth.go. Off, every client acts for Tenant.
	Auth bool
	// Tenants holds tenants and their API keys. Required with Auth; nil disables
	// the tenant admin endpoints.
	Tenants *finops.Tenants
	// AdminKey is the key of the admin HTTP API (tenants, keys, budgets, every
	// tenant's usage). Empty disables the admin API.
	AdminKey string
	// TicketTTL is how long a WebSocket ticket is good for. Default
	// DefaultTicketTTL.
	TicketTTL time.Duration
	// Ledger serves the usage endpoints and feeds /metrics; nil disables them.
	Ledger *finops.Ledger
	// Budgets serves the budget endpoints; nil disables them.
	Budgets *finops.Budgets
	// KV is the durable space where the OpenAI-compatible API keeps its response,
	// conversation and history IDs. Nil keeps them in memory, lost at restart.
	KV storage.KV
	// Logger receives the transport's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ReadLimit == 0 {
		c.ReadLimit = 1 << 20
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxQueuedFrames == 0 {
		c.MaxQueuedFrames = 4096
	}
	if c.MaxQueuedBytes == 0 {
		c.MaxQueuedBytes = 64 << 20
	}
	if c.Tenant == "" {
		c.Tenant = "default"
	}
	if c.TicketTTL == 0 {
		c.TicketTTL = DefaultTicketTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the bounds of c after defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.ReadLimit < 1024 || c.ReadLimit > 64<<20:
		return fmt.Errorf("transport: read limit %d outside 1 KiB to 64 MiB", c.ReadLimit)
	case c.ReadTimeout <= c.PingInterval:
		return fmt.Errorf("transport: read timeout %s must exceed ping interval %s",
			c.ReadTimeout, c.PingInterval)
	case c.MaxQueuedBytes < 1<<20:
		return fmt.Errorf("transport: max queued bytes %d below 1 MiB", c.MaxQueuedBytes)
	case c.MaxQueuedFrames < 16:
		return fmt.Errorf("transport: max queued frames %d below 16", c.MaxQueuedFrames)
	case c.Auth && c.Tenants == nil:
		return fmt.Errorf("transport: authentication needs a tenant store")
	case c.TicketTTL < time.Second || c.TicketTTL > 10*time.Minute:
		return fmt.Errorf("transport: ticket lifetime %s outside 1s to 10m", c.TicketTTL)
	case finops.ValidTenant(c.Tenant) != nil:
		return fmt.Errorf("transport: default tenant: %w", finops.ValidTenant(c.Tenant))
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("transport: allowed origin %q is not scheme://host", o)
		}
	}
	return nil
}

// Server is the HTTP handler of a node: the WebSocket endpoint and the HTTP API.
type Server struct {
	cfg      Config
	sessions *session.Manager
	log      *slog.Logger
	upgrader websocket.Upgrader
	mux      *http.ServeMux
	openai   *openaiAPI
	tickets  *tickets
	metrics  *metrics
	stats    serverStats // the figures of GET /stats (stats.go)

	// mu guards conns, shut and relays.
	mu     sync.Mutex
	conns  map[*conn]struct{}
	shut   bool
	relays *relays        // forwarding between nodes (vconn.go); nil on a single node
	wg     sync.WaitGroup // one per connection
}

// NewServer returns a server over sessions. It returns an error if cfg is invalid.
func NewServer(cfg Config, sessions *session.Manager) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Server{
		cfg: cfg, sessions: sessions, log: cfg.Logger,
		conns: make(map[*conn]struct{}),
		mux:   http.NewServeMux(),
	}
	s.upgrader = websocket.Upgrader{
		// A frame larger than the read buffer is read past it, straight into the
		// message; the buffer only needs to hold a frame's header and the small
		// frames, and every connection keeps it.
		ReadBufferSize:  256,
		WriteBufferSize: 4096,
		// Write buffers are taken from the pool only while a frame is written, so
		// an idle connection holds none.
		WriteBufferPool:   &sync.Pool{},
		Subprotocols:      []string{wire.Subprotocol},
		CheckOrigin:       s.checkOrigin,
		HandshakeTimeout:  10 * time.Second,
		EnableCompression: false,
	}
	s.mux.HandleFunc("GET /v1/ws", s.serveWS)
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /stats", s.serveStats)
	s.webRoutes(s.mux)
	s.tickets, s.metrics = newTickets(cfg.TicketTTL), newMetrics()
	if cfg.Ledger != nil {
		cfg.Ledger.Observe(s.metrics.observe)
	}
	s.finopsRoutes(s.mux)
	s.presetRoutes(s.mux)
	s.openai = newOpenAIAPI(s)
	s.openai.routes(s.mux)
	return s, nil
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ok","live_sessions":%d,"rollups_running":%d}`+"\n",
		s.sessions.LiveSessions(), s.sessions.RollupsRunning())
}

// checkOrigin accepts requests without an Origin header (not from a browser), from
// the server's own host, and from the configured allow-list.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "transport: expected a websocket upgrade", http.StatusBadRequest)
		return
	}
	if !hasSubprotocol(r, wire.Subprotocol) {
		http.Error(w, "transport: subprotocol "+wire.Subprotocol+" required",
			http.StatusBadRequest)
		return
	}
	p, err := s.authenticate(r, true)
	if err != nil {
		s.authError(w, err)
		return
	}
	if p.admin {
		s.httpError(w, http.StatusForbidden, "forbidden",
			"the admin key opens no sessions; use a tenant's key")
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	c := newConn(s, ws)
	c.tenant = p.tenant
	if !s.track(c) {
		c.refuse(wire.CloseGoingAway, "server shutting down")
		return
	}
	// The connection runs on a goroutine of its own and the handler returns, so
	// the HTTP server frees what it held for the request (its buffers, the
	// request): an idle connection keeps only its own state.
	c.ended = s.countConnection()
	go c.run()
}

func hasSubprotocol(r *http.Request, want string) bool {
	for _, p := range websocket.Subprotocols(r) {
		if p == want {
			return true
		}
	}
	return false
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Connections returns the number of open WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown closes every WebSocket connection with 1001 (going away), so clients
// reconnect and resume elsewhere or later, and waits for their goroutines to end
// or ctx to expire. Running answers are the session manager's to drain. It is safe
// to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopRelays()
	s.mu.Lock()
	s.shut = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.closeWith(wire.CloseGoingAway, "server shutting down")
	}
	if err := s.openai.shutdown(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("transport: connections still open at shutdown deadline")
	}
}
