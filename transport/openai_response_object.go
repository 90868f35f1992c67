package transport

import (
	"encoding/json"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// responseObject is a response of the Responses API.
type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *responseError     `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    int                `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []any              `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Conversation       *conversationRef   `json:"conversation"`
	ServiceTier        string             `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               json.RawMessage    `json:"text"`
	ToolChoice         string             `json:"tool_choice"`
	Tools              []responseTool     `json:"tools"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responseUsage     `json:"usage"`
	Metadata           map[string]string  `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetails struct {
	Reason string `json:"reason"`
}

type conversationRef struct {
	ID string `json:"id"`
}

// responseTool is a function tool of the Responses API.
type responseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// responseUsage is the Responses API's usage: input_tokens counts every prompt
// token, cached_tokens the part read from the cache.
type responseUsage struct {
	InputTokens         int            `json:"input_tokens"`
	InputTokensDetails  cachedDetails  `json:"input_tokens_details"`
	OutputTokens        int            `json:"output_tokens"`
	OutputTokensDetails reasoningCount `json:"output_tokens_details"`
	TotalTokens         int            `json:"total_tokens"`
}

type cachedDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type reasoningCount struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

func responseUsageOf(u *providers.Usage) *responseUsage {
	if u == nil {
		return nil
	}
	in := u.PromptTokens()
	return &responseUsage{InputTokens: in, OutputTokens: u.OutputTokens,
		TotalTokens:        in + u.OutputTokens,
		InputTokensDetails: cachedDetails{CachedTokens: u.CacheReadTokens}}
}

// responseOf builds the response rec stands for, held by a session with settings
// st. e is its answer, or nil while it is being produced.
func responseOf(rec *responseRecord, st *session.Settings, e *session.Event) *responseObject {
	r := &responseObject{
		ID: rec.ID, Object: "response", CreatedAt: rec.Created, Status: "in_progress",
		Instructions: rec.Instructions, MaxOutputTokens: st.MaxTokens, Model: st.Model,
		Output: []any{}, ParallelToolCalls: true, ServiceTier: "default", Store: rec.Store,
		Temperature: 1, TopP: 1, Text: json.RawMessage(`{"format":{"type":"text"}}`),
		ToolChoice: "auto", Tools: []responseTool{}, Truncation: "disabled",
		Metadata: rec.Metadata,
	}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	if rec.Previous != "" {
		r.PreviousResponseID = &rec.Previous
	}
	if rec.Conversation != "" {
		r.Conversation = &conversationRef{ID: rec.Conversation}
	}
	for _, t := range st.Tools {
		r.Tools = append(r.Tools, responseTool{Type: "function", Name: t.Name,
			Description: t.Description, Parameters: t.InputSchema})
	}
	if e != nil {
		finishResponse(r, rec.Session, e)
	}
	return r
}

// finishResponse fills in what the stored answer e says: status, output, usage.
func finishResponse(r *responseObject, sessionID string, e *session.Event) {
	r.Model = answerModel(r.Model, e)
	r.Output = answerItems(sessionID, e)
	if r.Output == nil {
		r.Output = []any{}
	}
	r.Usage = responseUsageOf(e.Usage)
	switch {
	case e.Status != providers.StatusComplete:
		r.Status = "failed"
		code := "server_error"
		if e.ErrorCode == "provider_rate_limited" {
			code = "rate_limit_exceeded"
		}
		r.Error = &responseError{Code: code, Message: "the model provider failed: " +
			e.ErrorCode}
	case e.StopReason == providers.StopMaxTokens:
		r.Status = "incomplete"
		r.IncompleteDetails = &incompleteDetails{Reason: "max_output_tokens"}
	default:
		r.Status = "completed"
	}
}
