package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/stated-dev/stated/session"
)

// conversationObject is a conversation of the Conversations API.
type conversationObject struct {
	ID        string            `json:"id"`
	Object    string            `json:"object"`
	CreatedAt int64             `json:"created_at"`
	Metadata  map[string]string `json:"metadata"`
}

func conversationOf(rec *conversationRecord) conversationObject {
	md := rec.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return conversationObject{ID: rec.ID, Object: "conversation", CreatedAt: rec.Created,
		Metadata: md}
}

// itemList is a page of conversation items.
type itemList struct {
	Object  string  `json:"object"`
	Data    []any   `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func newItemList(items []any, hasMore bool) itemList {
	l := itemList{Object: "list", Data: items, HasMore: hasMore}
	if l.Data == nil {
		l.Data = []any{}
	}
	if len(items) > 0 {
		first, last := anyItemID(items[0]), anyItemID(items[len(items)-1])
		l.FirstID, l.LastID = &first, &last
	}
	return l
}

func anyItemID(it any) string {
	switch v := it.(type) {
	case messageItem:
		return v.ID
	case functionCallItem:
		return v.ID
	case functionOutputItem:
		return v.ID
	}
	return ""
}

// conversationItems reads the items of a conversation request body and turns them
// into session items with fresh turn IDs. System and developer messages are
// refused: a response's instructions carry the system prompt.
func conversationItems(raw json.RawMessage) ([]session.Item, *apiError) {
	in, aerr := parseInput(raw)
	if aerr != nil {
		return nil, withParam(aerr, "items")
	}
	system, items, aerr := sessionItems(in)
	if aerr != nil {
		return nil, withParam(aerr, "items")
	}
	if len(system) > 0 {
		return nil, invalidRequest("items", "system and developer messages are not "+
			"supported in conversations; use the instructions of a response")
	}
	for i, id := range turnIDs(nil, len(items)) {
		items[i].TurnID = id
	}
	return items, nil
}

// serveCreateConversation answers POST /v1/conversations. The conversation is
// held by a session with the server's default settings until a response gives it
// its own.
func (a *openaiAPI) serveCreateConversation(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Items    json.RawMessage   `json:"items"`
		Metadata map[string]string `json:"metadata"`
	}
	if aerr := decodeBody(w, r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	items, aerr := conversationItems(body.Items)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var s *session.Session
	var err error
	if len(items) > 0 {
		s, _, err = a.sessions.OpenWith(r.Context(), tenant, session.Settings{}, items, false)
	} else {
		s, err = a.sessions.Open(r.Context(), tenant, session.Settings{})
	}
	if err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	rec := &conversationRecord{ID: newAPIID("conv"), Session: s.ID(), Created: nowUnix(),
		Metadata: body.Metadata}
	if err := a.index.putConversation(r.Context(), tenant, rec, 0); err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	writeJSON(w, http.StatusOK, conversationOf(rec))
}

// conversation reads a conversation record and loads its session.
func (a *openaiAPI) conversation(ctx context.Context, tenant, id string) (
	*conversationRecord, uint64, *session.Session, *apiError) {
	rec, rev, found, err := a.index.conversation(ctx, tenant, id)
	if err != nil {
		return nil, 0, nil, a.apiErrorOf(err)
	}
	missing := notFound("", "conversation", "Conversation with id '%s' not found.", id)
	if !found {
		return nil, 0, nil, missing
	}
	s, err := a.sessions.Get(ctx, tenant, rec.Session)
	if errors.Is(err, session.ErrNotFound) {
		return nil, 0, nil, missing
	}
	if err != nil {
		return nil, 0, nil, a.apiErrorOf(err)
	}
	return rec, rev, s, nil
}

func (a *openaiAPI) serveGetConversation(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	rec, _, _, aerr := a.conversation(r.Context(), tenant, r.PathValue("id"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, conversationOf(rec))
}

// serveDeleteConversation forgets a conversation ID; its session keeps its log.
func (a *openaiAPI) serveDeleteConversation(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	id := r.PathValue("id")
	if _, _, _, aerr := a.conversation(r.Context(), tenant, id); aerr != nil {
		writeError(w, aerr)
		return
	}
	if err := a.index.deleteConversation(r.Context(), tenant, id); err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "conversation.deleted",
		"deleted": true})
}

// serveAddItems answers POST /v1/conversations/{id}/items: the items are stored
// in the conversation's session without an answer.
func (a *openaiAPI) serveAddItems(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var body struct {
		Items json.RawMessage `json:"items"`
	}
	if aerr := decodeBody(w, r, &body); aerr != nil {
		writeError(w, aerr)
		return
	}
	items, aerr := conversationItems(body.Items)
	if aerr == nil && len(items) == 0 {
		aerr = invalidRequest("items", "items must not be empty")
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	_, _, s, aerr := a.conversation(r.Context(), tenant, r.PathValue("id"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ext, err := s.Extend(r.Context(), session.AnySeq, items, false)
	if err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	added := s.History(firstSeq(ext, len(items)) - 1)
	if len(added) > len(items) {
		added = added[:len(items)]
	}
	var out []any
	for _, e := range added {
		out = append(out, eventItems(s.ID(), &e)...)
	}
	writeJSON(w, http.StatusOK, newItemList(out, false))
}

// serveListItems answers GET /v1/conversations/{id}/items with limit (1 to 100,
// default 20), order (asc or desc, default desc) and after (an item ID).
func (a *openaiAPI) serveListItems(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, invalidRequest("limit", "limit must be between 1 and 100"))
			return
		}
		limit = n
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		writeError(w, invalidRequest("order", "order must be asc or desc"))
		return
	}
	_, _, s, aerr := a.conversation(r.Context(), tenant, r.PathValue("id"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var all []any
	for _, e := range s.History(0) {
		all = append(all, eventItems(s.ID(), &e)...)
	}
	if order != "asc" {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	writeJSON(w, http.StatusOK, pageItems(all, q.Get("after"), limit))
}

// pageItems returns up to limit items that follow the item with ID after.
func pageItems(all []any, after string, limit int) itemList {
	if after != "" {
		for i, it := range all {
			if anyItemID(it) == after {
				all = all[i+1:]
				break
			}
		}
	}
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	return newItemList(all, more)
}

// placeInConversation appends a response's input to a conversation's session and
// starts the answer. A response with other settings than the session's moves the
// conversation to a new session that carries its items.
func (a *openaiAPI) placeInConversation(ctx context.Context, tenant string,
	raw json.RawMessage, t *thread) (string, placed, *apiError) {
	id, aerr := conversationIDOf(raw)
	if aerr != nil {
		return "", placed{}, aerr
	}
	rec, rev, s, aerr := a.conversation(ctx, tenant, id)
	if aerr != nil {
		return "", placed{}, aerr
	}
	if have := s.Info().Settings; sameSettings(&have, &t.settings) {
		ext, err := s.Extend(ctx, session.AnySeq, t.items, true)
		if err != nil {
			return "", placed{}, a.apiErrorOf(err)
		}
		return id, placed{sess: s, ext: ext, inputFrom: firstSeq(ext, len(t.items))}, nil
	}
	p, err := a.openFresh(ctx, tenant, t.settings, itemsOf(s.History(0)), t.items)
	if err != nil {
		return "", placed{}, a.apiErrorOf(err)
	}
	rec.Session = p.sess.ID()
	if err := a.index.putConversation(ctx, tenant, rec, rev); err != nil {
		// Another response moved the conversation first; this answer runs in a
		// session the conversation no longer names.
		a.log.Warn("conversation moved concurrently", "conversation", id,
			"session", p.sess.ID(), "err", err)
	}
	return id, p, nil
}

// conversationIDOf reads the conversation parameter: an ID or {"id": ID}.
func conversationIDOf(raw json.RawMessage) (string, *apiError) {
	var id string
	if json.Unmarshal(raw, &id) == nil && id != "" {
		return id, nil
	}
	var ref conversationRef
	if json.Unmarshal(raw, &ref) == nil && ref.ID != "" {
		return ref.ID, nil
	}
	return "", invalidRequest("conversation", "conversation must be an ID or {\"id\": ID}")
}
