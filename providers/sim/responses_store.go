package sim

import "sync"

// responseStore keeps the conversations of stored responses (store true) for
// previous_response_id, at most max of them; the oldest is dropped first. A
// response is found only with the API key that created it.
type responseStore struct {
	max int

	mu    sync.Mutex // guards byID and order
	byID  map[string]storedResponse
	order []string // response IDs, oldest first
}

// storedResponse is a response's whole conversation: its input, with the
// previous response's conversation before it, then its output.
type storedResponse struct {
	keyHash string
	items   []respItem
}

func newResponseStore(max int) *responseStore {
	return &responseStore{max: max, byID: make(map[string]storedResponse)}
}

// put stores the conversation of response id.
func (st *responseStore) put(id, keyHash string, items []respItem) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.byID[id]; !ok {
		st.order = append(st.order, id)
	}
	st.byID[id] = storedResponse{keyHash: keyHash, items: items}
	for len(st.order) > st.max {
		delete(st.byID, st.order[0])
		st.order = st.order[1:]
	}
}

// get returns the conversation of response id, if it was stored with the same
// API key and is still kept. The items are shared: callers must not change them.
func (st *responseStore) get(id, keyHash string) ([]respItem, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, ok := st.byID[id]
	if !ok || r.keyHash != keyHash {
		return nil, false
	}
	return r.items, true
}

// resolvePrevious puts the conversation of the request's previous response
// before its input and checks the function calls of the whole. A response that
// was not stored (store false), has been dropped or belongs to another key gets
// the API's 400 previous_response_not_found.
func (s *Server) resolvePrevious(p *parsedResponses, keyHash string) *apiError {
	if id := p.req.PreviousResponseID; id != "" {
		prev, ok := s.responses.get(id, keyHash)
		if !ok {
			return chatInvalid("previous_response_id", "previous_response_not_found",
				"Previous response with id '%s' not found.", id)
		}
		items := make([]respItem, 0, len(prev)+len(p.items))
		p.items = append(append(items, prev...), p.items...)
	}
	return checkCallPairs(p.items)
}
