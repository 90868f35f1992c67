package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers"
)

// serveChat answers POST /v1/chat/completions.
func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, apiChat)
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
	p, e := parseChatRequest(body)
	var q *tokenSeq
	if e == nil {
		q = chatSequence(p, s.tokens)
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
	s.answerChat(x, key, p, q, rules)
}

// bearerKey returns the API key of an OpenAI request's Authorization header.
func bearerKey(r *http.Request) (string, bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return key, ok && strings.TrimSpace(key) != ""
}

// missingKey is OpenAI's 401 for a request without an API key.
func missingKey() *apiError {
	return &apiError{status: http.StatusUnauthorized, kind: "invalid_request_error",
		code: "invalid_api_key",
		message: "You didn't provide an API key. You need to provide your API key in " +
			"an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
}

// answerChat answers a valid Chat Completions request: cache, answer, latency,
// then the completion or its chunks.
func (s *Server) answerChat(x *exchange, key string, p *parsedChat, q *tokenSeq,
	rules Rules) {
	ns := hashFields("openai", key, p.req.Model, p.req.PromptCacheKey)
	cu := s.applyOpenAICache(ns, q, rules, p.cacheParams())
	ans := x.answer(chatHistory(p), p.maxTokens)
	usage := newChatUsage(q.total, cu, ans.outputTokens, rules.ReportsWrites)
	x.usage = cacheUsage{input: q.total - cu.cached - cu.written(), read: cu.cached,
		write5m: cu.writeShort, write1h: cu.writeLong}
	if !x.firstToken(q.total-cu.cached, ans.outputTokens, p.req.Stream) {
		return
	}

	c := chatCompletion{ID: newID("chatcmpl-"), Created: time.Now().Unix(),
		Model: p.req.Model, SystemFingerprint: "fp_sim"}
	if p.req.Stream {
		includeUsage := p.req.StreamOptions != nil && p.req.StreamOptions.IncludeUsage
		streamChat(x.stream(chatErrorEvent), c, ans, usage, includeUsage)
		return
	}
	c.Object = "chat.completion"
	c.Choices = []chatChoice{{Message: chatAnswer(ans), FinishReason: finishReason(ans.stop)}}
	c.Usage = usage
	x.writeJSON(c)
}

// The Chat Completions response: the completion (or chunk) object and its usage.
type (
	chatCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		Choices           []chatChoice `json:"choices"`
		Usage             *chatUsage   `json:"usage,omitempty"`
		ServiceTier       string       `json:"service_tier,omitempty"`
		SystemFingerprint string       `json:"system_fingerprint"`
	}
	chatChoice struct {
		Index        int             `json:"index"`
		Message      *chatOutMessage `json:"message,omitempty"`
		Delta        *chatDelta      `json:"delta,omitempty"`
		Logprobs     *struct{}       `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
	chatOutMessage struct {
		Role      string         `json:"role"`
		Content   *string        `json:"content"`
		Refusal   *string        `json:"refusal"`
		ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
	}
	chatDelta struct {
		Role      string          `json:"role,omitempty"`
		Content   *string         `json:"content,omitempty"`
		ToolCalls []chatCallPiece `json:"tool_calls,omitempty"`
	}
	chatCallPiece struct {
		Index    int           `json:"index"`
		ID       string        `json:"id,omitempty"`
		Type     string        `json:"type,omitempty"`
		Function chatArgsPiece `json:"function"`
	}
	chatArgsPiece struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	chatUsage struct {
		PromptTokens            int                `json:"prompt_tokens"`
		CompletionTokens        int                `json:"completion_tokens"`
		TotalTokens             int                `json:"total_tokens"`
		PromptTokensDetails     promptTokenDetails `json:"prompt_tokens_details"`
		CompletionTokensDetails completionDetails  `json:"completion_tokens_details"`
	}
	promptTokenDetails struct {
		CachedTokens     int  `json:"cached_tokens"`
		CacheWriteTokens *int `json:"cache_write_tokens,omitempty"`
		AudioTokens      int  `json:"audio_tokens"`
	}
	completionDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	}
)

// newChatUsage returns the usage of a completion; cache_write_tokens is there
// only for models that report writes.
func newChatUsage(prompt int, cu openaiCacheUsage, completion int, writes bool) *chatUsage {
	u := &chatUsage{
		PromptTokens:        prompt,
		CompletionTokens:    completion,
		TotalTokens:         prompt + completion,
		PromptTokensDetails: promptTokenDetails{CachedTokens: cu.cached},
	}
	if writes {
		written := cu.written()
		u.PromptTokensDetails.CacheWriteTokens = &written
	}
	return u
}

// chatAnswer is the assistant message of a non-streamed completion; content is
// null when the answer is tool calls only, "" when the answer is empty.
func chatAnswer(ans answer) *chatOutMessage {
	m := &chatOutMessage{Role: "assistant"}
	if ans.text != "" || len(ans.calls) == 0 {
		m.Content = &ans.text
	}
	for _, c := range ans.calls {
		m.ToolCalls = append(m.ToolCalls, chatToolCall{ID: c.ID, Type: "function",
			Function: chatFunction{Name: c.Name, Arguments: c.Arguments}})
	}
	return m
}

func finishReason(stop providers.StopReason) *string {
	r := "stop"
	switch stop {
	case providers.StopMaxTokens:
		r = "length"
	case providers.StopToolUse:
		r = "tool_calls"
	}
	return &r
}

// streamChat writes the answer as chat.completion.chunk events: the role first
// (with empty content, or with the first tool call fragment), content pieces,
// tool call fragments (index, id, type and name on the first of each call, the
// arguments spread over several), a chunk with finish_reason, then, when
// include_usage is set, a chunk with no choices and the usage, and [DONE]. With
// include_usage every other chunk carries "usage": null, as the API's do.
func streamChat(sse *sseWriter, c chatCompletion, ans answer, u *chatUsage, withUsage bool) {
	c.Object = "chat.completion.chunk"
	send := func(d *chatDelta, finish *string) {
		chunk := c
		chunk.Choices = []chatChoice{{Delta: d, FinishReason: finish}}
		sse.event("", chunkWithUsage(chunk, nil, withUsage))
	}

	for _, d := range chatDeltas(ans) {
		if d.Content != nil {
			sse.pace(*d.Content)
		}
		for _, piece := range d.ToolCalls {
			sse.pace(piece.Function.Arguments)
		}
		send(d, nil)
	}
	send(&chatDelta{}, finishReason(ans.stop))
	if withUsage {
		chunk := c
		chunk.Choices = []chatChoice{}
		sse.event("", chunkWithUsage(chunk, u, true))
	}
	sse.raw("", []byte("[DONE]"))
}

// chunkWithUsage returns a chunk for the wire: with a usage field (null unless u
// is given) when include_usage is set, without one otherwise.
func chunkWithUsage(c chatCompletion, u *chatUsage, withUsage bool) any {
	if !withUsage {
		c.Usage = nil
		return c
	}
	type withUsageField struct {
		chatCompletion
		Usage *chatUsage `json:"usage"`
	}
	return withUsageField{chatCompletion: c, Usage: u}
}

// chatDeltas cuts an answer into the deltas of its chunks, role on the first.
func chatDeltas(ans answer) []*chatDelta {
	var out []*chatDelta
	if ans.text != "" || len(ans.calls) == 0 {
		empty := ""
		out = append(out, &chatDelta{Content: &empty})
		for _, piece := range textPieces(ans.text) {
			out = append(out, &chatDelta{Content: &piece})
		}
	}
	for i, call := range ans.calls {
		out = append(out, &chatDelta{ToolCalls: []chatCallPiece{{Index: i, ID: call.ID,
			Type: "function", Function: chatArgsPiece{Name: call.Name}}}})
		for _, piece := range argPieces(call.Arguments) {
			out = append(out, &chatDelta{ToolCalls: []chatCallPiece{{Index: i,
				Function: chatArgsPiece{Arguments: piece}}}})
		}
	}
	out[0].Role = "assistant"
	return out
}

// writeOpenAIError answers e in the OpenAI error format:
// {"error":{"message","type","param","code"}}, param and code null when unset.
func writeOpenAIError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	type detail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	d := detail{Message: e.message, Type: e.kind}
	if e.param != "" {
		d.Param = &e.param
	}
	if e.code != "" {
		d.Code = &e.code
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error detail `json:"error"`
	}{d})
}
