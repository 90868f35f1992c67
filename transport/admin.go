package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
)

// maxAdminBody bounds the body of an admin or FinOps request.
const maxAdminBody = 64 << 10

// finopsRoutes registers the tickets, usage, metrics and admin endpoints.
// docs/finops.md documents them.
func (s *Server) finopsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/tickets", s.serveTickets)
	mux.HandleFunc("GET /v1/usage", s.serveUsage)
	mux.HandleFunc("GET /v1/sessions/{id}/usage", s.serveSessionUsage)
	mux.HandleFunc("POST /v1/sessions/{id}/resume_turns", s.serveResumeTurns)
	mux.HandleFunc("GET /metrics", s.serveMetrics)

	mux.HandleFunc("GET /v1/tenants", s.serveListTenants)
	mux.HandleFunc("POST /v1/tenants", s.serveCreateTenant)
	mux.HandleFunc("DELETE /v1/tenants/{tenant}", s.serveDeleteTenant)
	mux.HandleFunc("GET /v1/tenants/{tenant}/keys", s.serveListKeys)
	mux.HandleFunc("POST /v1/tenants/{tenant}/keys", s.serveIssueKey)
	mux.HandleFunc("DELETE /v1/tenants/{tenant}/keys/{id}", s.serveRevokeKey)
	mux.HandleFunc("GET /v1/tenants/{tenant}/budgets", s.serveGetBudgets)
	mux.HandleFunc("PUT /v1/tenants/{tenant}/budgets", s.servePutBudgets)
}

// httpError answers {"error":{"code","message","retry"}} with status. Codes are
// those of docs/finops.md: bad_request, unauthorized, forbidden, not_found,
// session_not_found, conflict, unavailable, internal.
func (s *Server) httpError(w http.ResponseWriter, status int, code, msg string) {
	respondJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg, "retry": status >= 500}})
}

// respondJSON writes v as a JSON response with status.
func respondJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client has gone
}

// readJSON decodes a request body of at most maxAdminBody bytes into v, refusing
// unknown fields; it answers 400 or 413 itself and returns false on failure.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.httpError(w, http.StatusRequestEntityTooLarge, "bad_request",
			fmt.Sprintf("body over %d bytes", maxAdminBody))
		return false
	case err != nil:
		s.httpError(w, http.StatusBadRequest, "bad_request", "body not read")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		s.httpError(w, http.StatusBadRequest, "bad_request", "body: "+err.Error())
		return false
	}
	if dec.More() {
		s.httpError(w, http.StatusBadRequest, "bad_request", "body: data after the object")
		return false
	}
	return true
}

// finopsError answers an error of the finops package with its status.
func (s *Server) finopsError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, finops.ErrTenantNotFound), errors.Is(err, finops.ErrKeyNotFound):
		s.httpError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, finops.ErrTenantExists):
		s.httpError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, finops.ErrInvalidTenant), errors.Is(err, finops.ErrInvalidLimit),
		errors.Is(err, finops.ErrInvalidQuery), errors.Is(err, finops.ErrQueryTooLarge):
		s.httpError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		s.log.Error("finops request failed", "err", err)
		s.httpError(w, http.StatusInternalServerError, "internal", "internal error; retry")
	}
}

// adminTenants returns the tenant store after checking the admin key, or answers
// and returns nil.
func (s *Server) adminTenants(w http.ResponseWriter, r *http.Request) *finops.Tenants {
	if !s.requireAdmin(w, r) {
		return nil
	}
	if s.cfg.Tenants == nil {
		s.httpError(w, http.StatusNotFound, "not_found", "this server keeps no tenants")
		return nil
	}
	return s.cfg.Tenants
}

func (s *Server) serveListTenants(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	if ts == nil {
		return
	}
	list, err := ts.List(r.Context())
	if err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"tenants": list})
}

func (s *Server) serveCreateTenant(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	var in struct {
		Name string `json:"name"`
	}
	if ts == nil || !s.readJSON(w, r, &in) {
		return
	}
	t, err := ts.Create(r.Context(), in.Name)
	if err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusCreated, t)
}

func (s *Server) serveDeleteTenant(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	if ts == nil {
		return
	}
	if err := ts.Delete(r.Context(), r.PathValue("tenant")); err != nil {
		s.finopsError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveListKeys(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	if ts == nil {
		return
	}
	keys, err := ts.Keys(r.Context(), r.PathValue("tenant"))
	if err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// serveIssueKey creates a key: 201 {"key": "sk-stated-...", ...KeyInfo}. The key
// is shown here only.
func (s *Server) serveIssueKey(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	var in struct {
		Name string `json:"name"`
	}
	if ts == nil || !s.readJSON(w, r, &in) {
		return
	}
	key, info, err := ts.IssueKey(r.Context(), r.PathValue("tenant"), in.Name)
	if err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusCreated, struct {
		Key string `json:"key"`
		finops.KeyInfo
	}{key, info})
}

func (s *Server) serveRevokeKey(w http.ResponseWriter, r *http.Request) {
	ts := s.adminTenants(w, r)
	if ts == nil {
		return
	}
	if err := ts.RevokeKey(r.Context(), r.PathValue("tenant"), r.PathValue("id")); err != nil {
		s.finopsError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// budgetsJSON is the body of the budget endpoints.
type budgetsJSON struct {
	Limits []finops.Limit `json:"limits"`
	// Standings are the tenant-scope limits as their current windows stand
	// (GET only).
	Standings []finops.Standing `json:"standings,omitempty"`
}

func (s *Server) adminBudgets(w http.ResponseWriter, r *http.Request) *finops.Budgets {
	if !s.requireAdmin(w, r) {
		return nil
	}
	if s.cfg.Budgets == nil {
		s.httpError(w, http.StatusNotFound, "not_found", "this server keeps no budgets")
		return nil
	}
	if err := finops.ValidTenant(r.PathValue("tenant")); err != nil {
		s.finopsError(w, err)
		return nil
	}
	return s.cfg.Budgets
}

func (s *Server) serveGetBudgets(w http.ResponseWriter, r *http.Request) {
	b := s.adminBudgets(w, r)
	if b == nil {
		return
	}
	tenant := r.PathValue("tenant")
	limits, err := b.Limits(r.Context(), tenant)
	if err != nil {
		s.finopsError(w, err)
		return
	}
	st, err := b.Standings(r.Context(), tenant, r.URL.Query().Get("session"))
	if err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, budgetsJSON{Limits: limits, Standings: st})
}

// servePutBudgets replaces a tenant's limits; the tenant need not be registered
// (with authentication off, clients act for "default").
func (s *Server) servePutBudgets(w http.ResponseWriter, r *http.Request) {
	b := s.adminBudgets(w, r)
	var in budgetsJSON
	if b == nil || !s.readJSON(w, r, &in) {
		return
	}
	if err := b.SetLimits(r.Context(), r.PathValue("tenant"), in.Limits); err != nil {
		s.finopsError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, budgetsJSON{Limits: in.Limits})
}

// serveResumeTurns lifts a runaway pause: the admin may resume any session, a
// tenant its own. Another tenant's session is session_not_found, as a missing one.
func (s *Server) serveResumeTurns(w http.ResponseWriter, r *http.Request) {
	p, ok := s.requireAny(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	tenant, ok := s.sessionOwner(w, r, p, id)
	if !ok {
		return
	}
	by := "client"
	if p.admin {
		by = "admin"
	}
	if err := s.sessions.ResumeTurns(r.Context(), tenant, id, by); err != nil {
		s.sessionHTTPError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"session_id": id, "paused": false})
}

// sessionOwner returns the tenant of session id if p may see it; otherwise it
// answers 404 session_not_found, the same for a session of another tenant as for
// one that does not exist, and returns false.
func (s *Server) sessionOwner(w http.ResponseWriter, r *http.Request, p principal,
	id string) (string, bool) {
	owner, err := s.sessions.Owner(r.Context(), id)
	if err == nil && (p.admin || owner == p.tenant) {
		return owner, true
	}
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.sessionHTTPError(w, err)
		return "", false
	}
	s.httpError(w, http.StatusNotFound, "session_not_found", session.ErrNotFound.Error())
	return "", false
}

// sessionHTTPError answers an error of the session layer.
func (s *Server) sessionHTTPError(w http.ResponseWriter, err error) {
	switch code := codeOf(err); code {
	case "session_not_found":
		s.httpError(w, http.StatusNotFound, code, err.Error())
	case "invalid":
		s.httpError(w, http.StatusBadRequest, "bad_request", err.Error())
	case "shutting_down":
		s.httpError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		s.log.Error("session request failed", "err", err)
		s.httpError(w, http.StatusInternalServerError, "internal", "internal error; retry")
	}
}
