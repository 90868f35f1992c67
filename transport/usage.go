package transport

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stated-dev/stated/finops"
)

// serveUsage answers GET /v1/usage?from=&to=&group_by=&tenant=&format=: the
// ledger's totals over a range, grouped. A tenant sees its own entries; the admin
// sees every tenant's, or one with tenant=.
func (s *Server) serveUsage(w http.ResponseWriter, r *http.Request) {
	p, ok := s.requireAny(w, r)
	if !ok || !s.haveLedger(w) {
		return
	}
	q, by, err := usageQuery(r)
	if err != nil {
		s.httpError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	q.Tenant = p.tenant
	if p.admin {
		q.Tenant = r.URL.Query().Get("tenant")
		if q.Tenant != "" && finops.ValidTenant(q.Tenant) != nil {
			s.finopsError(w, finops.ValidTenant(q.Tenant))
			return
		}
	} else if r.URL.Query().Has("tenant") && r.URL.Query().Get("tenant") != p.tenant {
		s.httpError(w, http.StatusForbidden, "forbidden", "a tenant sees its own usage only")
		return
	}
	s.writeReport(w, r, q, by)
}

// serveSessionUsage answers GET /v1/sessions/{id}/usage: the ledger's entries of
// one session, summed (group_by= groups them too). Another tenant's session is
// session_not_found, as a missing one is.
func (s *Server) serveSessionUsage(w http.ResponseWriter, r *http.Request) {
	p, ok := s.requireAny(w, r)
	if !ok || !s.haveLedger(w) {
		return
	}
	id := r.PathValue("id")
	owner, ok := s.sessionOwner(w, r, p, id)
	if !ok {
		return
	}
	q, by, err := usageQuery(r)
	if err != nil {
		s.httpError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	q.Tenant, q.Session = owner, id
	s.writeReport(w, r, q, by)
}

func (s *Server) haveLedger(w http.ResponseWriter) bool {
	if s.cfg.Ledger == nil {
		s.httpError(w, http.StatusNotFound, "not_found", "this server keeps no ledger")
		return false
	}
	return true
}

// writeReport answers with the report of q, as CSV when format=csv or the Accept
// header asks for text/csv, else as JSON.
func (s *Server) writeReport(w http.ResponseWriter, r *http.Request, q finops.Query,
	by finops.GroupBy) {
	rep, err := s.cfg.Ledger.Report(r.Context(), q, by)
	if err != nil {
		s.finopsError(w, err)
		return
	}
	if wantsCSV(r) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = rep.WriteCSV(w) // a failed write means the client has gone
		return
	}
	respondJSON(w, http.StatusOK, rep)
}

func wantsCSV(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "csv":
		return true
	case "json":
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/csv")
}

// usageQuery reads from, to and group_by. A bound is RFC 3339 or a date
// (YYYY-MM-DD, UTC): from a date is that day's start; to a date is the next
// day's start, so the day is included. to is exclusive.
func usageQuery(r *http.Request) (finops.Query, finops.GroupBy, error) {
	v := r.URL.Query()
	var q finops.Query
	var err error
	if q.From, err = parseBound(v.Get("from"), false); err != nil {
		return q, "", fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseBound(v.Get("to"), true); err != nil {
		return q, "", fmt.Errorf("to: %w", err)
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, "", fmt.Errorf("to is before from")
	}
	by, err := finops.ParseGroupBy(v.Get("group_by"))
	return q, by, err
}

func parseBound(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) > 64 {
		return time.Time{}, fmt.Errorf("longer than 64 bytes")
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}
