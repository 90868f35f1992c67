package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stated-dev/stated/finops"
)

// Authentication.
//
// A client presents an API key as a bearer token (Authorization: Bearer KEY) on
// the WebSocket handshake and on every HTTP request. A browser, which cannot set
// headers on a WebSocket, first trades its key for a ticket (POST /v1/tickets)
// and passes it as ?ticket= on the WebSocket URL; a ticket is good once, for
// TicketTTL. The admin key (Config.AdminKey) manages tenants, keys and budgets
// and reads every tenant's usage; it opens no sessions.
//
// With Config.Auth off, every client acts for Config.Tenant and keys are not
// asked for; the admin key still guards the admin API.

var (
	// errUnauthorized: no credential, or one that is not valid.
	errUnauthorized = errors.New("transport: unauthorized")
	// errForbidden: a valid credential that may not do this.
	errForbidden = errors.New("transport: forbidden")
)

// principal is who a request acts for: a tenant, or the admin.
type principal struct {
	tenant string // empty for the admin
	admin  bool
}

// Limits of tickets.
const (
	// DefaultTicketTTL is how long a ticket is good for when Config.TicketTTL is 0.
	DefaultTicketTTL = 30 * time.Second
	// maxTickets bounds the tickets outstanding at once.
	maxTickets = 100000
)

// authenticate finds who r acts for: the admin key or a tenant's key as a bearer
// token, or (when ticketOK) a ticket in the query. It returns errUnauthorized
// when nothing valid is presented and authentication is on, and a storage error
// as it is. Every handler of the package authenticates through it.
func (s *Server) authenticate(r *http.Request, ticketOK bool) (principal, error) {
	token, hasBearer := bearer(r)
	if hasBearer && s.cfg.AdminKey != "" && finops.SameKey(token, s.cfg.AdminKey) {
		return principal{admin: true}, nil
	}
	if !s.cfg.Auth {
		return principal{tenant: s.cfg.Tenant}, nil
	}
	if ticketOK {
		if t := r.URL.Query().Get("ticket"); t != "" {
			tenant, ok := s.tickets.redeem(t, time.Now())
			if !ok {
				return principal{}, fmt.Errorf("%w: ticket unknown, used or expired",
					errUnauthorized)
			}
			return principal{tenant: tenant}, nil
		}
	}
	if !hasBearer {
		return principal{}, fmt.Errorf("%w: no API key", errUnauthorized)
	}
	info, err := s.cfg.Tenants.Authenticate(r.Context(), token)
	if errors.Is(err, finops.ErrUnauthorized) {
		return principal{}, fmt.Errorf("%w: API key not valid", errUnauthorized)
	}
	if err != nil {
		return principal{}, err
	}
	return principal{tenant: info.Tenant}, nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// tickets are the single-use WebSocket tickets of this node. A ticket is kept
// only as its hash.
type tickets struct {
	ttl time.Duration

	mu sync.Mutex // guards byHash
	// byHash maps the SHA-256 of a ticket to its grant.
	byHash map[string]ticketGrant
}

type ticketGrant struct {
	tenant  string
	expires time.Time
}

func newTickets(ttl time.Duration) *tickets {
	return &tickets{ttl: ttl, byHash: make(map[string]ticketGrant)}
}

// issue returns a new ticket for tenant and when it expires. It fails when
// maxTickets are outstanding and unexpired.
func (t *tickets) issue(tenant string, now time.Time) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("transport: random ticket: %w", err)
	}
	tok := "tk_" + base64.RawURLEncoding.EncodeToString(raw[:])
	expires := now.Add(t.ttl)

	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byHash) >= maxTickets {
		for h, g := range t.byHash {
			if !now.Before(g.expires) {
				delete(t.byHash, h)
			}
		}
		if len(t.byHash) >= maxTickets {
			return "", time.Time{}, errors.New("transport: too many tickets outstanding")
		}
	}
	t.byHash[ticketHash(tok)] = ticketGrant{tenant: tenant, expires: expires}
	return tok, expires, nil
}

// redeem uses a ticket up: it returns its tenant if the ticket was issued, is
// unexpired and was not used before.
func (t *tickets) redeem(tok string, now time.Time) (string, bool) {
	if len(tok) > 128 {
		return "", false
	}
	h := ticketHash(tok)
	t.mu.Lock()
	defer t.mu.Unlock()
	g, ok := t.byHash[h]
	delete(t.byHash, h)
	if !ok || !now.Before(g.expires) {
		return "", false
	}
	return g.tenant, true
}

func ticketHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// serveTickets issues a ticket to the tenant whose key authenticates the request:
// POST /v1/tickets -> {"ticket": "...", "expires_at": "..."}.
func (s *Server) serveTickets(w http.ResponseWriter, r *http.Request) {
	p, ok := s.requireTenant(w, r)
	if !ok {
		return
	}
	tok, expires, err := s.tickets.issue(p.tenant, time.Now())
	if err != nil {
		s.httpError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"ticket": tok, "expires_at": expires.UTC().Format(time.RFC3339Nano),
	})
}

// requireTenant authenticates r as a tenant, or answers 401 (no valid key) or 403
// (the admin key, which has no sessions) and returns false.
func (s *Server) requireTenant(w http.ResponseWriter, r *http.Request) (principal, bool) {
	p, ok := s.requireAny(w, r)
	if ok && p.admin {
		s.httpError(w, http.StatusForbidden, "forbidden",
			"the admin key manages tenants; use a tenant's key")
		return principal{}, false
	}
	return p, ok
}

// requireAny authenticates r as a tenant or the admin, or answers 401 and
// returns false.
func (s *Server) requireAny(w http.ResponseWriter, r *http.Request) (principal, bool) {
	p, err := s.authenticate(r, false)
	if err != nil {
		s.authError(w, err)
		return principal{}, false
	}
	return p, true
}

// requireAdmin authenticates r as the admin, or answers 401 or 403 and returns
// false. Without an admin key configured, the admin API answers 403 to everyone.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	p, err := s.authenticate(r, false)
	switch {
	case err != nil && errors.Is(err, errUnauthorized) && s.cfg.AdminKey != "":
		s.authError(w, err)
		return false
	case err != nil && !errors.Is(err, errUnauthorized):
		s.authError(w, err)
		return false
	case !p.admin:
		s.httpError(w, http.StatusForbidden, "forbidden", "this needs the admin key")
		return false
	}
	return true
}

// authError answers a failed authentication.
func (s *Server) authError(w http.ResponseWriter, err error) {
	if errors.Is(err, errUnauthorized) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stated"`)
		s.httpError(w, http.StatusUnauthorized, "unauthorized", err.Error())
		return
	}
	s.log.Error("authentication failed", "err", err)
	s.httpError(w, http.StatusInternalServerError, "internal", "internal error; retry")
}

// IsLoopback reports whether addr (host:port) listens on loopback only:
// 127.0.0.0/8, ::1 or "localhost". An empty or unspecified host listens on every
// interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAuth checks that a server with this configuration can authenticate
// anyone: with Auth on, an admin key or at least one tenant key must exist.
func CheckAuth(ctx context.Context, cfg Config) error {
	if !cfg.Auth {
		return nil
	}
	if cfg.Tenants == nil {
		return errors.New("transport: authentication on without a tenant store")
	}
	if cfg.AdminKey != "" {
		return nil
	}
	has, err := cfg.Tenants.HasKeys(ctx)
	if err != nil {
		return err
	}
	if !has {
		return errors.New("transport: authentication is on but there is no admin key " +
			"(STATED_ADMIN_KEY) and no tenant key")
	}
	return nil
}
