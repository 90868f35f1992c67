package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/stated-dev/stated/providers"
)

// serveMessages answers POST /v1/messages.
func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request) {
	x := s.begin(w, r, apiMessages)
	if x == nil {
		return
	}
	defer x.finish()
	key := messagesKey(r)
	if key == "" {
		x.fail(&apiError{status: http.StatusUnauthorized,
			kind: "authentication_error", message: "x-api-key header is required"})
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		x.fail(invalidRequest("anthropic-version: header is required"))
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		x.fail(bodyError(err))
		return
	}
	p, e := parseMessagesRequest(body)
	var blocks []promptBlock
	if e == nil {
		blocks = buildPrompt(p, s.tokens)
		x.capture(key, body, p.model, p.stream, markedPrefixes(blocks))
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
	rules := anthropicRulesFor(s.rules, p.model)
	if e := checkBreakpoints(p, rules); e != nil {
		x.fail(e)
		return
	}
	s.answerMessages(x, key, p, blocks, rules)
}

// messagesKey returns the API key of a Messages request: the x-api-key header,
// or a bearer token in Authorization, which is how the official Go SDK sends
// the key.
func messagesKey(r *http.Request) string {
	if key := r.Header.Get("x-api-key"); key != "" {
		return key
	}
	key, _ := bearerKey(r)
	return key
}

// answerMessages answers a valid Messages request: cache, answer, latency,
// then the Message or its stream.
func (s *Server) answerMessages(x *exchange, key string, p *parsedRequest,
	blocks []promptBlock, rules Rules) {
	usage := s.applyAnthropicCache(hashFields("anthropic", key, p.model), blocks, rules)
	x.usage = usage
	ans := x.answer(messagesHistory(p), p.maxTokens)
	msg := newMessage(p.model, ans, usage)
	if !x.firstToken(usage.input+usage.write5m+usage.write1h, ans.outputTokens, p.stream) {
		return
	}
	if p.stream {
		streamMessage(x.stream(anthropicErrorEvent), msg, ans)
		return
	}
	x.writeJSON(msg)
}

// markedPrefixes returns the prefix digests of the blocks that carry a
// breakpoint, in order.
func markedPrefixes(blocks []promptBlock) []digest {
	var out []digest
	for _, b := range blocks {
		if b.mark != nil {
			out = append(out, b.prefix)
		}
	}
	return out
}

// bodyError turns a failure to read the body into the error answered for it.
func bodyError(err error) *apiError {
	if errors.Is(err, errBodyTooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge, kind: "request_too_large",
			message: "Request exceeds the maximum allowed number of bytes."}
	}
	return invalidRequest("could not read the request body")
}

// The Messages API's response: the Message object and its usage.
type (
	message struct {
		ID           string       `json:"id"`
		Type         string       `json:"type"`
		Role         string       `json:"role"`
		Model        string       `json:"model"`
		Content      []any        `json:"content"`
		StopReason   *string      `json:"stop_reason"`
		StopSequence *string      `json:"stop_sequence"`
		Usage        messageUsage `json:"usage"`
	}
	messageUsage struct {
		InputTokens              int           `json:"input_tokens"`
		CacheCreationInputTokens int           `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int           `json:"cache_read_input_tokens"`
		CacheCreation            cacheCreation `json:"cache_creation"`
		OutputTokens             int           `json:"output_tokens"`
		ServiceTier              string        `json:"service_tier"`
	}
	cacheCreation struct {
		Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
	}
	textBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	toolUseBlock struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
)

// newMessage builds the whole Message for an answer.
func newMessage(model string, ans answer, u cacheUsage) *message {
	stop := string(ans.stop)
	msg := &message{
		ID: newID("msg_01"), Type: "message", Role: "assistant", Model: model,
		StopReason: &stop, Content: []any{},
		Usage: messageUsage{
			InputTokens:              u.input,
			CacheCreationInputTokens: u.write5m + u.write1h,
			CacheReadInputTokens:     u.read,
			CacheCreation:            cacheCreation{Ephemeral5m: u.write5m, Ephemeral1h: u.write1h},
			OutputTokens:             ans.outputTokens,
			ServiceTier:              "standard",
		},
	}
	if ans.text != "" {
		msg.Content = append(msg.Content, textBlock{Type: "text", Text: ans.text})
	}
	for _, c := range ans.calls {
		msg.Content = append(msg.Content, toolUseBlock{Type: "tool_use", ID: c.ID,
			Name: c.Name, Input: toolInput(c.Arguments)})
	}
	return msg
}

// toolInput returns tool call arguments as a JSON object for a tool_use block:
// compacted, or {} when the recorded arguments are not a JSON object.
func toolInput(args string) json.RawMessage {
	in := bytes.TrimSpace([]byte(args))
	if len(in) == 0 || in[0] != '{' || !json.Valid(in) {
		return json.RawMessage("{}")
	}
	return json.RawMessage(compactJSON(in))
}

// streamMessage writes msg as the Messages API's event stream: message_start
// (usage with output_tokens 1), a ping, for each block content_block_start,
// its deltas and content_block_stop, then message_delta with the stop reason
// and the cumulative usage, and message_stop.
func streamMessage(sse *sseWriter, msg *message, ans answer) {
	start := *msg
	start.Content = []any{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	sse.event("message_start", map[string]any{"type": "message_start", "message": start})

	index := 0
	if ans.text != "" {
		streamText(sse, index, ans.text)
		index++
	}
	for _, c := range ans.calls {
		streamToolUse(sse, index, c)
		index++
	}

	sse.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": msg.StopReason, "stop_sequence": nil},
		"usage": map[string]int{
			"input_tokens":                msg.Usage.InputTokens,
			"cache_creation_input_tokens": msg.Usage.CacheCreationInputTokens,
			"cache_read_input_tokens":     msg.Usage.CacheReadInputTokens,
			"output_tokens":               msg.Usage.OutputTokens,
		},
	})
	sse.event("message_stop", map[string]string{"type": "message_stop"})
}

func streamText(sse *sseWriter, index int, text string) {
	sse.event("content_block_start", map[string]any{"type": "content_block_start",
		"index": index, "content_block": textBlock{Type: "text", Text: ""}})
	if index == 0 {
		sse.event("ping", map[string]string{"type": "ping"})
	}
	for _, piece := range textPieces(text) {
		sse.pace(piece)
		sse.event("content_block_delta", map[string]any{"type": "content_block_delta",
			"index": index, "delta": map[string]string{"type": "text_delta", "text": piece}})
	}
	sse.event("content_block_stop", map[string]any{"type": "content_block_stop",
		"index": index})
}

func streamToolUse(sse *sseWriter, index int, c providers.ToolCall) {
	sse.event("content_block_start", map[string]any{"type": "content_block_start",
		"index": index, "content_block": toolUseBlock{Type: "tool_use", ID: c.ID,
			Name: c.Name, Input: json.RawMessage("{}")}})
	if index == 0 {
		sse.event("ping", map[string]string{"type": "ping"})
	}
	pieces := append([]string{""}, argPieces(string(toolInput(c.Arguments)))...)
	for _, piece := range pieces {
		sse.pace(piece)
		sse.event("content_block_delta", map[string]any{"type": "content_block_delta",
			"index": index, "delta": map[string]string{"type": "input_json_delta",
				"partial_json": piece}})
	}
	sse.event("content_block_stop", map[string]any{"type": "content_block_stop",
		"index": index})
}

// writeAnthropicError answers e in the Anthropic error format:
// {"type":"error","error":{"type":...,"message":...}}.
func writeAnthropicError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	_ = json.NewEncoder(w).Encode(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{e.kind, e.message}})
}
