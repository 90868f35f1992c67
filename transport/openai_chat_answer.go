package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// chatCompletion is a whole answer of POST /v1/chat/completions.
type chatCompletion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	Choices           []completionChoice `json:"choices"`
	Usage             chatUsage          `json:"usage"`
	ServiceTier       string             `json:"service_tier"`
	SystemFingerprint *string            `json:"system_fingerprint"`
}

type completionChoice struct {
	Index        int               `json:"index"`
	Message      completionMessage `json:"message"`
	Logprobs     *struct{}         `json:"logprobs"`
	FinishReason string            `json:"finish_reason"`
}

type completionMessage struct {
	Role        string         `json:"role"`
	Content     *string        `json:"content"`
	Refusal     *string        `json:"refusal"`
	ToolCalls   []chatToolCall `json:"tool_calls,omitempty"`
	Annotations []struct{}     `json:"annotations"`
}

// chatUsage is OpenAI's usage of a chat completion. prompt_tokens counts every
// prompt token, cached or not; cached_tokens is the part read from the cache.
// Tokens written to the cache are counted as prompt tokens without a detail field
// of their own, as OpenAI reports them.
type chatUsage struct {
	PromptTokens            int               `json:"prompt_tokens"`
	CompletionTokens        int               `json:"completion_tokens"`
	TotalTokens             int               `json:"total_tokens"`
	PromptTokensDetails     promptDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails completionDetails `json:"completion_tokens_details"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens"`
}

type completionDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// chatUsageOf maps the session's disjoint usage categories onto OpenAI's fields.
func chatUsageOf(u *providers.Usage) chatUsage {
	if u == nil {
		return chatUsage{}
	}
	prompt := u.PromptTokens()
	return chatUsage{
		PromptTokens: prompt, CompletionTokens: u.OutputTokens,
		TotalTokens:         prompt + u.OutputTokens,
		PromptTokensDetails: promptDetails{CachedTokens: u.CacheReadTokens},
	}
}

// answerChat writes the answer that p started, as chunks or whole. stored is
// called with the stored answer before its end reaches the client, so that what
// it records is in place when the client's next request comes.
func (a *openaiAPI) answerChat(ctx context.Context, w http.ResponseWriter, req *chatRequest,
	p placed, stored func(*session.Event)) {
	if !p.ext.Answering && !p.ext.Duplicate {
		writeError(w, a.apiErrorOf(session.ErrClosed))
		return
	}
	model := p.sess.Info().Settings.Model
	if !req.Stream {
		e, err := follow(ctx, p.sess, p.ext.LastSeq, nil)
		if err != nil {
			writeError(w, a.apiErrorOf(err))
			return
		}
		stored(e)
		if aerr := answerFailure(e); aerr != nil {
			writeError(w, aerr)
			return
		}
		writeJSON(w, http.StatusOK, chatCompletionOf(p.sess.ID(), model, e))
		return
	}

	cs := newChatStream(w, chatID(p.sess.ID(), p.ext.LastSeq+1), model,
		req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	cs.start()
	e, err := follow(ctx, p.sess, p.ext.LastSeq, cs)
	if err != nil {
		cs.fail(a.apiErrorOf(err))
		return
	}
	stored(e)
	cs.finish(e)
}

// answerFailure is the error for an answer that failed or was cut, or nil.
func answerFailure(e *session.Event) *apiError {
	if e.Status == providers.StatusComplete {
		return nil
	}
	code := e.ErrorCode
	if code == "" {
		code = "provider_error"
	}
	return answerError(code)
}

func chatID(sessionID string, seq uint64) string {
	return fmt.Sprintf("chatcmpl-%s-%d", sessionID, seq)
}

// finishReason is OpenAI's name for why an answer stopped.
func finishReason(e *session.Event) string {
	switch {
	case e.StopReason == providers.StopToolUse || len(e.ToolCalls) > 0:
		return "tool_calls"
	case e.StopReason == providers.StopMaxTokens:
		return "length"
	}
	return "stop"
}

func chatCompletionOf(sessionID, model string, e *session.Event) *chatCompletion {
	msg := completionMessage{Role: "assistant", Annotations: []struct{}{}}
	if e.Text != "" || len(e.ToolCalls) == 0 {
		text := e.Text
		msg.Content = &text
	}
	for _, c := range e.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, chatToolCall{ID: c.ID, Type: "function",
			Function: chatFunction{Name: c.Name, Arguments: c.Arguments}})
	}
	return &chatCompletion{
		ID: chatID(sessionID, e.Seq), Object: "chat.completion", Created: e.Time.Unix(),
		Model: answerModel(model, e), ServiceTier: "default",
		Choices: []completionChoice{{Message: msg, FinishReason: finishReason(e)}},
		Usage:   chatUsageOf(e.Usage),
	}
}

// answerModel is the model that answered as the provider named it, or the
// session's model.
func answerModel(model string, e *session.Event) string {
	if e != nil && e.Model != "" {
		return e.Model
	}
	return model
}

// chatStream writes an answer as chat completion chunks over SSE, the way OpenAI
// sends them: a first chunk with the role, content and tool call pieces, a last
// chunk with the finish reason, a usage chunk when asked for, and [DONE].
type chatStream struct {
	sse       *sseWriter
	id        string
	model     string
	created   int64
	usage     bool
	sentText  strings.Builder      // text sent so far
	sentCalls []providers.ToolCall // tool calls sent so far
}

type chatChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       string          `json:"service_tier"`
	SystemFingerprint *string         `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	Refusal   *string        `json:"refusal,omitempty"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

func newChatStream(w http.ResponseWriter, id, model string, usage bool) *chatStream {
	return &chatStream{sse: newSSEWriter(w), id: id, model: model, usage: usage,
		created: nowUnix()}
}

func (c *chatStream) start() {
	c.sse.start()
	empty := ""
	c.chunk(chunkDelta{Role: "assistant", Content: &empty}, nil)
}

func (c *chatStream) chunk(d chunkDelta, finish *string) {
	ch := chatChunk{ID: c.id, Object: "chat.completion.chunk", Created: c.created,
		Model: c.model, ServiceTier: "default",
		Choices: []chunkChoice{{Delta: d, FinishReason: finish}}}
	if c.usage {
		ch.Usage = json.RawMessage("null")
	}
	c.sse.data(ch)
}

func (c *chatStream) text(piece string) {
	c.sentText.WriteString(piece)
	c.chunk(chunkDelta{Content: &piece}, nil)
}

func (c *chatStream) call(d providers.Delta) {
	tc := chatToolCall{Index: &d.Index, Function: chatFunction{Arguments: d.Arguments}}
	for len(c.sentCalls) <= d.Index {
		c.sentCalls = append(c.sentCalls, providers.ToolCall{})
	}
	sent := &c.sentCalls[d.Index]
	if sent.ID == "" && sent.Name == "" {
		sent.ID, sent.Name = d.ID, d.Name
		tc.ID, tc.Type, tc.Function.Name = d.ID, "function", d.Name
	}
	sent.Arguments += d.Arguments
	c.chunk(chunkDelta{ToolCalls: []chatToolCall{tc}}, nil)
}

// finish sends what the stored answer has that the deltas did not bring, then the
// closing chunks; a failed answer ends the stream with an error instead.
func (c *chatStream) finish(e *session.Event) {
	if aerr := answerFailure(e); aerr != nil {
		c.fail(aerr)
		return
	}
	c.model = answerModel(c.model, e)
	if rest, ok := strings.CutPrefix(e.Text, c.sentText.String()); ok && rest != "" {
		c.text(rest)
	}
	for i, call := range e.ToolCalls {
		if i >= len(c.sentCalls) || c.sentCalls[i].ID == "" {
			c.call(providers.Delta{Index: i, ID: call.ID, Name: call.Name,
				Arguments: call.Arguments})
			continue
		}
		rest, ok := strings.CutPrefix(call.Arguments, c.sentCalls[i].Arguments)
		if ok && rest != "" {
			c.call(providers.Delta{Index: i, Arguments: rest})
		}
	}
	reason := finishReason(e)
	c.chunk(chunkDelta{}, &reason)
	if c.usage {
		u, _ := json.Marshal(chatUsageOf(e.Usage))
		c.sse.data(chatChunk{ID: c.id, Object: "chat.completion.chunk", Created: c.created,
			Model: c.model, ServiceTier: "default", Choices: []chunkChoice{}, Usage: u})
	}
	c.sse.done()
}

// fail ends the stream with an error object, as OpenAI does mid-stream.
func (c *chatStream) fail(e *apiError) {
	c.sse.data(struct {
		Error *apiError `json:"error"`
	}{e})
}
