package sim

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/stated-dev/stated/providers"
)

// serveResponses answers POST /v1/responses.
func (s *Server) serveResponses(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, apiResponses)
	if x == nil {
		return
	}
	defer x.finish()
	key, ok := bearerKey(r)
	if !ok {
		x.fail(missingKey())
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		x.fail(chatBodyError(err))
		return
	}
	p, e := parseResponsesRequest(body)
	if e == nil {
		e = s.resolvePrevious(p, hashKey(key))
	}
	var q *tokenSeq
	if e == nil {
		q = responsesSequence(p, s.tokens)
		x.capture(key, body, p.req.Model, p.req.Stream, q.markedPrefixes())
	} else {
		x.capture(key, body, "", false, nil)
	}
	if x.injectStatus() {
		return
	}
	if e != nil {
		x.fail(e)
		return
	}
	rules := openaiRulesFor(s.rules, p.req.Model)
	if e := checkOpenAICacheParams(p.cacheParams(), rules); e != nil {
		x.fail(e)
		return
	}
	s.answerResponses(x, key, p, q, rules)
}

// answerResponses answers a valid Responses request: cache, answer, store,
// latency, then the Response or its events.
func (s *Server) answerResponses(x *exchange, key string, p *parsedResponses, q *tokenSeq,
	rules Rules) {
	ns := hashFields("openai", key, p.req.Model, p.req.PromptCacheKey)
	cu := s.applyOpenAICache(ns, q, rules, p.cacheParams())
	ans := x.answer(responsesHistory(p.items), p.maxTokens)
	x.usage = cacheUsage{input: q.total - cu.cached - cu.written(), read: cu.cached,
		write5m: cu.writeShort, write1h: cu.writeLong}

	resp := newResponse(p, ans, rules)
	resp.Usage = newResponseUsage(q.total, cu, ans.outputTokens, rules.ReportsWrites)
	if p.store {
		s.responses.put(resp.ID, hashKey(key), slices.Concat(p.items, answerItems(ans)))
	}
	if !x.firstToken(q.total-cu.cached, ans.outputTokens, p.req.Stream) {
		return
	}
	if p.req.Stream {
		streamResponse(x.stream(responsesErrorEvent), resp)
		return
	}
	x.writeJSON(resp)
}

// responsesSequence lays the request out as its canonical token sequence, as
// chatSequence does for a chat: tools, instructions (a developer message), then
// every item with its framing, then the reply's priming.
func responsesSequence(p *parsedResponses, counter *tokenCounter) *tokenSeq {
	q := newTokenSeq(p.req.Model, counter)
	for _, t := range p.req.Tools {
		q.marker(chatToolOverhead, "tool", t.Type)
		q.text(t.Name)
		q.text(t.Description)
		q.text(compactJSON(t.Parameters))
		q.boundary()
	}
	if in := p.req.Instructions; in != nil && *in != "" {
		q.marker(chatMessageOverhead, "message", "developer", "")
		q.text(*in)
		q.boundary()
	}
	for _, it := range p.items {
		switch it.kind {
		case itemMessage:
			q.marker(chatMessageOverhead, "message", it.role, "")
			q.parts(it.parts)
		case itemCall:
			q.marker(chatMessageOverhead, "call", it.callID)
			q.text(it.name)
			q.text(it.arguments)
		case itemCallOutput:
			q.marker(chatMessageOverhead, "message", "tool", "")
			q.text(it.callID)
			q.parts(it.parts)
		}
		q.boundary()
	}
	q.endInput()
	q.marker(chatReplyOverhead, "reply")
	return q
}

// responsesHistory reduces a conversation to its turns, as chatHistory does,
// so one conversation gets the same answer over every API.
func responsesHistory(items []respItem) history {
	var h history
	for _, it := range items {
		switch {
		case it.kind == itemMessage && it.role == "user":
			h = append(h, turn{role: turnUser, text: joinParts(it.parts)})
		case it.kind == itemMessage && it.role == "assistant":
			if text := joinParts(it.parts); text != "" {
				h = append(h, turn{role: turnAssistant, text: text})
			}
		case it.kind == itemCall:
			h = append(h, turn{role: turnCall,
				text: it.name + "\n" + compactJSON([]byte(it.arguments))})
		case it.kind == itemCallOutput:
			h = append(h, turn{role: turnTool, text: joinParts(it.parts)})
		}
	}
	return h
}

func joinParts(parts []chatPart) string {
	if len(parts) == 1 {
		return parts[0].Text
	}
	var b []byte
	for _, p := range parts {
		b = append(b, p.Text...)
	}
	return string(b)
}

// answerItems returns an answer as conversation items, for the store.
func answerItems(ans answer) []respItem {
	var out []respItem
	if ans.text != "" || len(ans.calls) == 0 {
		out = append(out, respItem{kind: itemMessage, role: "assistant",
			parts: []chatPart{{Type: "text", Text: ans.text}}})
	}
	for _, c := range ans.calls {
		out = append(out, respItem{kind: itemCall, callID: c.ID, name: c.Name,
			arguments: c.Arguments})
	}
	return out
}

// The Response object, its output items and its usage.
type (
	responseObject struct {
		ID                   string          `json:"id"`
		Object               string          `json:"object"`
		CreatedAt            int64           `json:"created_at"`
		Status               string          `json:"status"`
		Background           bool            `json:"background"`
		CompletedAt          *int64          `json:"completed_at"`
		Error                *struct{}       `json:"error"`
		IncompleteDetails    *incomplete     `json:"incomplete_details"`
		Instructions         *string         `json:"instructions"`
		MaxOutputTokens      *int            `json:"max_output_tokens"`
		MaxToolCalls         *int            `json:"max_tool_calls"`
		Model                string          `json:"model"`
		Output               []any           `json:"output"`
		ParallelToolCalls    bool            `json:"parallel_tool_calls"`
		PreviousResponseID   *string         `json:"previous_response_id"`
		PromptCacheKey       *string         `json:"prompt_cache_key"`
		PromptCacheRetention *string         `json:"prompt_cache_retention"`
		PromptCacheOptions   *cacheOptions   `json:"prompt_cache_options,omitempty"`
		Reasoning            map[string]any  `json:"reasoning"`
		ServiceTier          string          `json:"service_tier"`
		Store                bool            `json:"store"`
		Temperature          float64         `json:"temperature"`
		Text                 map[string]any  `json:"text"`
		ToolChoice           string          `json:"tool_choice"`
		Tools                []toolOut       `json:"tools"`
		TopLogprobs          int             `json:"top_logprobs"`
		TopP                 float64         `json:"top_p"`
		Truncation           string          `json:"truncation"`
		Usage                *responseUsage  `json:"usage"`
		User                 *string         `json:"user"`
		Metadata             json.RawMessage `json:"metadata"`

		message *outputMessage // the text of the answer, nil for calls only
		calls   []*outputCall
	}
	incomplete struct {
		Reason string `json:"reason"`
	}
	toolOut struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description *string         `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      bool            `json:"strict"`
	}
	outputMessage struct {
		ID      string       `json:"id"`
		Type    string       `json:"type"`
		Status  string       `json:"status"`
		Role    string       `json:"role"`
		Content []outputText `json:"content"`
	}
	outputText struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	outputCall struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	responseUsage struct {
		InputTokens         int            `json:"input_tokens"`
		InputTokensDetails  inputDetails   `json:"input_tokens_details"`
		OutputTokens        int            `json:"output_tokens"`
		OutputTokensDetails map[string]int `json:"output_tokens_details"`
		TotalTokens         int            `json:"total_tokens"`
	}
	inputDetails struct {
		CachedTokens            int           `json:"cached_tokens"`
		CacheWriteTokens        *int          `json:"cache_write_tokens,omitempty"`
		CacheWriteTokensDetails *writeDetails `json:"cache_write_tokens_details,omitempty"`
	}
	writeDetails struct {
		TTL12h int `json:"ttl_12h_tokens"`
		TTL30m int `json:"ttl_30m_tokens"`
	}
)

// newResponse builds the completed (or, cut by max_output_tokens, incomplete)
// Response for an answer, without its usage.
func newResponse(p *parsedResponses, ans answer, rules Rules) *responseObject {
	req := &p.req
	now := time.Now().Unix()
	r := &responseObject{
		ID: newID("resp_"), Object: "response", CreatedAt: now, Status: "completed",
		CompletedAt: &now, Instructions: req.Instructions, MaxOutputTokens: req.MaxOutputTokens,
		Model: req.Model, Output: []any{}, ParallelToolCalls: true,
		PreviousResponseID:   optional(req.PreviousResponseID),
		PromptCacheKey:       optional(req.PromptCacheKey),
		PromptCacheRetention: optional(req.PromptCacheRetention),
		Reasoning:            map[string]any{"effort": nil, "summary": nil},
		ServiceTier:          "default", Store: p.store, Temperature: 1,
		Text:       map[string]any{"format": map[string]string{"type": "text"}},
		ToolChoice: "auto", Tools: toolsOut(req.Tools), TopP: 1, Truncation: "disabled",
		Metadata: json.RawMessage("{}"),
	}
	if req.ParallelToolCalls != nil {
		r.ParallelToolCalls = *req.ParallelToolCalls
	}
	if len(req.Metadata) > 0 && string(req.Metadata) != "null" {
		r.Metadata = req.Metadata
	}
	if rules.Breakpoints {
		r.PromptCacheOptions = &cacheOptions{Mode: "implicit", TTL: "30m"}
		if o := req.PromptCacheOptions; o != nil && o.Mode != "" {
			r.PromptCacheOptions.Mode = o.Mode
		}
		if o := req.PromptCacheOptions; o != nil && o.TTL != "" {
			r.PromptCacheOptions.TTL = o.TTL
		}
	}
	r.addOutput(ans)
	return r
}

// addOutput adds the answer's items: its text as one message, then one
// function_call per tool call.
func (r *responseObject) addOutput(ans answer) {
	status := "completed"
	if ans.stop == providers.StopMaxTokens {
		r.Status, r.CompletedAt = "incomplete", nil
		r.IncompleteDetails = &incomplete{Reason: "max_output_tokens"}
		status = "incomplete"
	}
	if ans.text != "" || len(ans.calls) == 0 {
		r.message = &outputMessage{ID: newID("msg_"), Type: "message", Status: status,
			Role: "assistant", Content: []outputText{newOutputText(ans.text)}}
		r.Output = append(r.Output, r.message)
	}
	for _, c := range ans.calls {
		call := &outputCall{ID: newID("fc_"), Type: itemCall, Status: "completed",
			CallID: c.ID, Name: c.Name, Arguments: c.Arguments}
		r.calls = append(r.calls, call)
		r.Output = append(r.Output, call)
	}
}

func newOutputText(text string) outputText {
	return outputText{Type: "output_text", Text: text, Annotations: []any{}, Logprobs: []any{}}
}

// newResponseUsage returns the usage of a response. cached_tokens and
// cache_write_tokens are parts of input_tokens; cache_write_tokens and its
// details are there only for models that report writes.
func newResponseUsage(prompt int, cu openaiCacheUsage, output int,
	writes bool) *responseUsage {
	u := &responseUsage{
		InputTokens:         prompt,
		InputTokensDetails:  inputDetails{CachedTokens: cu.cached},
		OutputTokens:        output,
		OutputTokensDetails: map[string]int{"reasoning_tokens": 0},
		TotalTokens:         prompt + output,
	}
	if writes {
		written := cu.written()
		u.InputTokensDetails.CacheWriteTokens = &written
		u.InputTokensDetails.CacheWriteTokensDetails = &writeDetails{
			TTL12h: cu.writeLong, TTL30m: cu.writeShort}
	}
	return u
}

func toolsOut(tools []responsesTool) []toolOut {
	out := make([]toolOut, 0, len(tools))
	for _, t := range tools {
		o := toolOut{Type: t.Type, Name: t.Name, Description: optional(t.Description),
			Parameters: t.Parameters, Strict: true}
		if t.Strict != nil {
			o.Strict = *t.Strict
		}
		if len(o.Parameters) == 0 {
			o.Parameters = json.RawMessage("null")
		}
		out = append(out, o)
	}
	return out
}

// optional returns nil for "", so that JSON says null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
