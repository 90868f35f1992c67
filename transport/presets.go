package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// maxPresetBody bounds the body of PUT /v1/presets/{name}: a preset is stored as
// one KV value of at most 1 MiB, and JSON escaping can double its text.
const maxPresetBody = 2 << 20

// History frames: at most maxHistoryEvents events, and no more once their text
// passes maxHistoryBytes (one event always goes, whatever its size), so a frame
// stays well within a client's read limit.
const (
	defaultHistoryEvents = 100
	maxHistoryEvents     = 1000
	maxHistoryBytes      = 4 << 20
)

// PresetJSON is a preset as the HTTP API and the preset frame carry it.
type PresetJSON struct {
	Name      string              `json:"name"`
	Version   int                 `json:"version,omitempty"`
	Model     string              `json:"model,omitempty"`
	MaxTokens int                 `json:"max_tokens,omitempty"`
	System    string              `json:"system,omitempty"`
	Tools     []wire.Tool         `json:"tools,omitempty"`
	Context   *wire.ContextPolicy `json:"context,omitempty"`
	Digest    string              `json:"digest,omitempty"`
	Created   string              `json:"created,omitempty"`
}

// presetRoutes registers the preset endpoints on mux.
func (s *Server) presetRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/presets/{name}", s.servePutPreset)
	mux.HandleFunc("GET /v1/presets/{name}", s.serveGetPreset)
	mux.HandleFunc("GET /v1/presets", s.serveListPresets)
}

// presetTenant authenticates r as a tenant and returns it, or answers 401 or 403
// and returns false. Presets are a tenant's own.
func (s *Server) presetTenant(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, ok := s.requireTenant(w, r)
	return p.tenant, ok
}

// servePutPreset registers a preset: 200 with the stored version (the same one
// when the content did not change, the next one when it did).
func (s *Server) servePutPreset(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.presetTenant(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPresetBody))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, wire.CodeInvalid,
			fmt.Sprintf("transport: preset body over %d bytes", maxPresetBody))
		return
	}
	var in PresetJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeAPIError(w, http.StatusBadRequest, wire.CodeBadFrame,
			"transport: preset: "+err.Error())
		return
	}
	in.Name = r.PathValue("name")
	p, err := s.sessions.PutPreset(r.Context(), tenant, presetFromJSON(&in))
	if err != nil {
		writeSessionAPIError(w, err)
		return
	}
	writeAPIJSON(w, http.StatusOK, presetToJSON(&p))
}

func (s *Server) serveGetPreset(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.presetTenant(w, r)
	if !ok {
		return
	}
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeAPIError(w, http.StatusBadRequest, wire.CodeInvalid,
				"transport: version must be a whole number from 1")
			return
		}
		version = n
	}
	p, err := s.sessions.GetPreset(r.Context(), tenant, r.PathValue("name"), version)
	if err != nil {
		writeSessionAPIError(w, err)
		return
	}
	writeAPIJSON(w, http.StatusOK, presetToJSON(&p))
}

func (s *Server) serveListPresets(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.presetTenant(w, r)
	if !ok {
		return
	}
	list, err := s.sessions.ListPresets(r.Context(), tenant)
	if err != nil {
		writeSessionAPIError(w, err)
		return
	}
	out := struct {
		Presets []PresetJSON `json:"presets"`
	}{Presets: make([]PresetJSON, 0, len(list))}
	for i := range list {
		out.Presets = append(out.Presets, presetToJSON(&list[i]))
	}
	writeAPIJSON(w, http.StatusOK, out)
}

// handleSavings serves the pin, history and preset frames.
func (c *conn) handleSavings(f *wire.ClientFrame) {
	switch f.Type {
	case wire.TypePreset:
		in := PresetJSON{Name: f.Preset, Model: f.Model, MaxTokens: f.MaxTokens,
			System: f.System, Tools: f.Tools, Context: f.Context}
		p, err := c.srv.sessions.PutPreset(c.ctx, c.tenant, presetFromJSON(&in))
		if err != nil {
			c.sendSessionError("", err)
			return
		}
		c.send(&wire.ServerFrame{Type: wire.TypePreset, Preset: p.Name,
			PresetVersion: p.Version, Digest: p.Digest})
	case wire.TypePin:
		if c.attached("") {
			if _, err := c.sess.Pin(c.ctx, c, f.Seq); err != nil {
				c.sendSessionError("", err)
			}
		}
	case wire.TypeHistory:
		if c.attached("") {
			c.sendHistory(f)
		}
	}
}

// sendHistory answers a history frame with the events after after_seq.
func (c *conn) sendHistory(f *wire.ClientFrame) {
	limit := f.Limit
	switch {
	case limit < 0 || limit > maxHistoryEvents:
		c.sendError("", wire.CodeInvalid, fmt.Sprintf("limit must be 0 to %d",
			maxHistoryEvents))
		return
	case limit == 0:
		limit = defaultHistoryEvents
	}
	events, more := c.sess.HistoryPage(f.AfterSeq, limit)
	out := &wire.ServerFrame{Type: wire.TypeHistory, Seq: c.sess.Info().LastSeq}
	size := 0
	for i := range events {
		size += len(events[i].Text) + 256
		if i > 0 && size > maxHistoryBytes {
			more = true
			break
		}
		out.Events = append(out.Events, eventToWire(&events[i]))
	}
	out.More = more
	c.send(out)
}

// savingsToWire copies the savings engine's event fields.
func savingsToWire(e *session.Event, w *wire.Event) {
	w.Pinned, w.Target = e.Pinned, e.Target
	if len(e.Omitted) > 0 {
		w.OmittedTokens = make(map[string]int, len(e.Omitted))
		for lever, n := range e.Omitted {
			w.OmittedTokens[string(lever)] = n
		}
	}
	if cp := e.Rollup; cp != nil {
		f := cp.Figures
		w.Rollup = &wire.Rollup{Through: cp.Through, Elided: cp.Elided, Reason: cp.Reason,
			Figures: wire.RollupFigures{
				PromptTokens: f.PromptTokens, NewPromptTokens: f.NewPromptTokens,
				FoldedTokens: f.FoldedTokens, ElidedTokens: f.ElidedTokens,
				RewriteTokens: f.RewriteTokens, HorizonTurns: f.HorizonTurns,
				SavingsUSD: f.SavingsUSD, SummaryCostUSD: f.SummaryCostUSD,
				RewriteCostUSD: f.RewriteCostUSD,
			}}
	}
}

func contextFromWire(c *wire.ContextPolicy) session.ContextPolicy {
	if c == nil {
		return session.ContextPolicy{}
	}
	return session.ContextPolicy{
		RollupHighTokens: c.RollupHighTokens, RollupLowTokens: c.RollupLowTokens,
		SummaryModel: c.SummaryModel, RationAfterTurns: c.RationAfterTurns,
		RationMinTokens: c.RationMinTokens, DedupMinTokens: c.DedupMinTokens,
	}
}

func contextToWire(c session.ContextPolicy) *wire.ContextPolicy {
	return &wire.ContextPolicy{
		RollupHighTokens: c.RollupHighTokens, RollupLowTokens: c.RollupLowTokens,
		SummaryModel: c.SummaryModel, RationAfterTurns: c.RationAfterTurns,
		RationMinTokens: c.RationMinTokens, DedupMinTokens: c.DedupMinTokens,
	}
}

func presetFromJSON(in *PresetJSON) session.Preset {
	return session.Preset{Name: in.Name, Model: in.Model, MaxTokens: in.MaxTokens,
		System: in.System, Tools: toolsFromWire(in.Tools), Context: contextFromWire(in.Context)}
}

func presetToJSON(p *session.Preset) PresetJSON {
	out := PresetJSON{Name: p.Name, Version: p.Version, Model: p.Model,
		MaxTokens: p.MaxTokens, System: p.System, Context: contextToWire(p.Context),
		Digest: p.Digest, Created: p.Created.Format(time.RFC3339Nano)}
	for _, t := range p.Tools {
		out.Tools = append(out.Tools, wire.Tool{Name: t.Name, Description: t.Description,
			InputSchema: t.InputSchema})
	}
	return out
}

// writeSessionAPIError answers an HTTP request with the error of the session
// layer, coded as on the WebSocket.
func writeSessionAPIError(w http.ResponseWriter, err error) {
	code := codeOf(err)
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, session.ErrPresetNotFound):
		status = http.StatusNotFound
	case code == wire.CodeInternal:
		status = http.StatusInternalServerError
		err = errors.New("internal error; retry")
	case code == wire.CodeShuttingDown:
		status = http.StatusServiceUnavailable
	}
	writeAPIError(w, status, code, err.Error())
}

// writeAPIError writes {"error":{"code","message","retry"}} with status.
func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	writeAPIJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg, "retry": wire.Retryable(code)}})
}

// writeAPIJSON writes v as the response with status.
func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client has gone
}
