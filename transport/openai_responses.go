package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// responseRequest is the body of POST /v1/responses and of a response.create
// event of the WebSocket mode. Fields not listed are accepted and ignored
// (temperature, top_p, reasoning, include, truncation, ...).
type responseRequest struct {
	Type               string            `json:"type"` // WebSocket mode: response.create
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions"`
	PreviousResponseID string            `json:"previous_response_id"`
	Conversation       json.RawMessage   `json:"conversation"`
	Store              *bool             `json:"store"`
	Stream             bool              `json:"stream"`
	Background         bool              `json:"background"`
	Generate           *bool             `json:"generate"`
	Tools              []responseTool    `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Metadata           map[string]string `json:"metadata"`
	Text               *struct {
		Format json.RawMessage `json:"format"`
	} `json:"text"`
	StreamID string `json:"stream_id"` // WebSocket mode: the lane to answer on
}

// responseStart is a response whose input is placed and whose answer runs.
type responseStart struct {
	rec   *responseRecord
	p     placed
	keys  []historyKey // a stateless request's history keys, for remember
	model string
}

// serveCreateResponse answers POST /v1/responses.
func (a *openaiAPI) serveCreateResponse(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var req responseRequest
	if aerr := decodeBody(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	rs, aerr := a.startResponse(r.Context(), tenant, &req,
		func(n int) []string { return turnIDs(r, n) })
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set(SessionHeader, rs.p.sess.ID())
	ctx := context.WithoutCancel(r.Context())
	if !req.Stream {
		e, err := follow(ctx, rs.p.sess, rs.p.ext.LastSeq, nil)
		if err != nil {
			writeError(w, a.apiErrorOf(err))
			return
		}
		a.rememberResponse(ctx, tenant, rs, e)
		if aerr := answerFailure(e); aerr != nil {
			writeError(w, aerr)
			return
		}
		st := rs.p.sess.Info().Settings
		writeJSON(w, http.StatusOK, responseOf(rs.rec, &st, e))
		return
	}
	sse := newSSEWriter(w)
	sse.start()
	a.streamResponse(ctx, tenant, rs, sseEvents{sse})
}

// sseEvents sends Responses stream events over SSE, named by their type.
type sseEvents struct{ sse *sseWriter }

func (s sseEvents) send(typ string, ev map[string]any) { s.sse.event(typ, ev) }

// streamResponse streams the answer of rs to out and remembers it once stored.
func (a *openaiAPI) streamResponse(ctx context.Context, tenant string, rs *responseStart,
	out eventWriter) {
	st := rs.p.sess.Info().Settings
	stream := newResponseStream(out, responseOf(rs.rec, &st, nil), rs.p.sess.ID(),
		rs.p.ext.LastSeq+1)
	stream.start()
	e, err := follow(ctx, rs.p.sess, rs.p.ext.LastSeq, stream)
	if err != nil {
		stream.fail(a.apiErrorOf(err))
		return
	}
	a.rememberResponse(ctx, tenant, rs, e)
	stream.finish(e)
}

// rememberResponse records, for a stateless request, the history its answer
// completes.
func (a *openaiAPI) rememberResponse(ctx context.Context, tenant string, rs *responseStart,
	e *session.Event) {
	if rs.keys != nil {
		a.remember(ctx, tenant, rs.keys[len(rs.keys)-1], rs.p.sess, e)
	}
}

// startResponse checks a response request, places its input in a session, starts
// the answer and records the response ID durably. ids returns n turn IDs for the
// new items, in order.
func (a *openaiAPI) startResponse(ctx context.Context, tenant string, req *responseRequest,
	ids func(n int) []string) (*responseStart, *apiError) {
	if aerr := a.checkResponse(req); aerr != nil {
		return nil, aerr
	}
	t, aerr := a.responseThread(req)
	if aerr != nil {
		return nil, aerr
	}
	anchored := req.PreviousResponseID != "" || len(req.Conversation) > 0
	if anchored {
		t.newFrom = 0 // a chained request sends only new input
	}
	for i, id := range ids(len(t.newItems())) {
		t.items[t.newFrom+i].TurnID = id
	}

	rs := &responseStart{model: req.Model, rec: &responseRecord{
		ID: newAPIID("resp"), Created: nowUnix(), Store: req.Store == nil || *req.Store,
		Previous: req.PreviousResponseID, Instructions: req.Instructions,
		Metadata: req.Metadata,
	}}
	var err error
	switch {
	case req.PreviousResponseID != "":
		rs.p, aerr = a.placeAfterResponse(ctx, tenant, req.PreviousResponseID, t)
	case len(req.Conversation) > 0:
		rs.rec.Conversation, rs.p, aerr = a.placeInConversation(ctx, tenant, req.Conversation, t)
	default:
		rs.keys = t.chainKeys()
		rs.p, err = a.placeStateless(ctx, tenant, t, rs.keys)
	}
	if err != nil {
		aerr = a.apiErrorOf(err)
	}
	if aerr != nil {
		return nil, aerr
	}

	rs.rec.Session, rs.rec.InputFrom, rs.rec.After = rs.p.sess.ID(), rs.p.inputFrom,
		rs.p.ext.LastSeq
	if err := a.index.putResponse(ctx, tenant, rs.rec); err != nil {
		return nil, a.apiErrorOf(err)
	}
	if !rs.p.ext.Answering && !rs.p.ext.Duplicate {
		return nil, a.apiErrorOf(session.ErrClosed)
	}
	return rs, nil
}

// checkResponse refuses what the Responses API of this server does not do.
func (a *openaiAPI) checkResponse(req *responseRequest) *apiError {
	switch {
	case req.Background:
		return invalidRequest("background", "background responses are not supported")
	case req.Generate != nil && !*req.Generate:
		return invalidRequest("generate", "generate: false is not supported")
	case !autoToolChoice(req.ToolChoice):
		return invalidRequest("tool_choice", "only tool_choice \"auto\" is supported")
	case req.Text != nil && !textFormat(req.Text.Format):
		return invalidRequest("text.format", "only the text format is supported")
	case req.PreviousResponseID != "" && len(req.Conversation) > 0:
		return invalidRequest("previous_response_id",
			"previous_response_id cannot be used together with conversation")
	}
	return a.checkModel(req.Model)
}

// responseThread turns a response request into the session's terms. The system
// prompt is the instructions followed by the system and developer messages that
// lead the input.
func (a *openaiAPI) responseThread(req *responseRequest) (*thread, *apiError) {
	in, aerr := parseInput(req.Input)
	if aerr != nil {
		return nil, aerr
	}
	system, items, aerr := sessionItems(in)
	if aerr != nil {
		return nil, aerr
	}
	if req.Instructions != nil && *req.Instructions != "" {
		system = append([]string{*req.Instructions}, system...)
	}
	st := session.Settings{Model: req.Model, System: strings.Join(system, "\n\n")}
	if req.MaxOutputTokens != nil {
		st.MaxTokens = *req.MaxOutputTokens
	}
	for _, tl := range req.Tools {
		if tl.Type != "function" {
			return nil, invalidRequest("tools", "only function tools are supported")
		}
		st.Tools = append(st.Tools, providers.Tool{Name: tl.Name, Description: tl.Description,
			InputSchema: tl.Parameters})
	}
	t, aerr := a.finishThread(&thread{items: items}, st)
	if aerr != nil {
		return nil, withParam(aerr, "input")
	}
	return t, nil
}

// placeAfterResponse appends the input after the answer of response prevID. If
// that answer is still being produced, it waits for it: a client whose socket
// dropped may chain on a response it never saw finish.
func (a *openaiAPI) placeAfterResponse(ctx context.Context, tenant, prevID string,
	t *thread) (placed, *apiError) {
	prev, found, err := a.index.response(ctx, tenant, prevID)
	if err != nil {
		return placed{}, a.apiErrorOf(err)
	}
	notFound := notFound("previous_response_not_found", "previous_response_id",
		"Previous response with id '%s' not found.", prevID)
	if !found {
		return placed{}, notFound
	}
	s, err := a.sessions.Get(ctx, tenant, prev.Session)
	if errors.Is(err, session.ErrNotFound) {
		return placed{}, notFound
	}
	if err != nil {
		return placed{}, a.apiErrorOf(err)
	}
	e := answerAfter(s, prev.After)
	if e == nil {
		if e, err = follow(ctx, s, prev.After, nil); err != nil {
			return placed{}, a.apiErrorOf(err)
		}
	}
	p, err := a.extendOrFork(ctx, tenant, s, e.Seq, t.settings, t.items)
	if err != nil {
		return placed{}, a.apiErrorOf(err)
	}
	return p, nil
}

// serveGetResponse answers GET /v1/responses/{id}. A response created with store
// false is not retrievable, as at OpenAI.
func (a *openaiAPI) serveGetResponse(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	id := r.PathValue("id")
	rec, s, aerr := a.storedResponse(r.Context(), tenant, id)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	st := s.Info().Settings
	w.Header().Set(SessionHeader, s.ID())
	writeJSON(w, http.StatusOK, responseOf(rec, &st, answerAfter(s, rec.After)))
}

// storedResponse reads a stored response and loads its session.
func (a *openaiAPI) storedResponse(ctx context.Context, tenant, id string) (
	*responseRecord, *session.Session, *apiError) {
	rec, found, err := a.index.response(ctx, tenant, id)
	if err != nil {
		return nil, nil, a.apiErrorOf(err)
	}
	missing := notFound("", "", "Response with id '%s' not found.", id)
	if !found || !rec.Store {
		return nil, nil, missing
	}
	s, err := a.sessions.Get(ctx, tenant, rec.Session)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil, missing
	}
	if err != nil {
		return nil, nil, a.apiErrorOf(err)
	}
	return rec, s, nil
}

// serveDeleteResponse answers DELETE /v1/responses/{id}: the ID is forgotten; the
// session keeps its log.
func (a *openaiAPI) serveDeleteResponse(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	id := r.PathValue("id")
	if _, _, aerr := a.storedResponse(r.Context(), tenant, id); aerr != nil {
		writeError(w, aerr)
		return
	}
	if err := a.index.deleteResponse(r.Context(), tenant, id); err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "response.deleted",
		"deleted": true})
}
