package sim

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// minOutputTokens is the smallest max_output_tokens the Responses API accepts.
const minOutputTokens = 16

// responsesRequest is the part of an OpenAI Responses request the simulator
// reads. Other fields (temperature, tool_choice, reasoning, text, ...) are
// accepted and ignored.
type responsesRequest struct {
	Model                string          `json:"model"`
	Input                json.RawMessage `json:"input"`
	Instructions         *string         `json:"instructions"`
	Tools                []responsesTool `json:"tools"`
	Stream               bool            `json:"stream"`
	Store                *bool           `json:"store"`
	PreviousResponseID   string          `json:"previous_response_id"`
	PromptCacheKey       string          `json:"prompt_cache_key"`
	PromptCacheRetention string          `json:"prompt_cache_retention"`
	PromptCacheOptions   *cacheOptions   `json:"prompt_cache_options"`
	MaxOutputTokens      *int            `json:"max_output_tokens"`
	ParallelToolCalls    *bool           `json:"parallel_tool_calls"`
	Metadata             json.RawMessage `json:"metadata"`
}

// responsesTool is a function tool: {"type":"function","name",...}.
type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// inputItem is one item of the input array: a message (with or without
// "type"), a function_call or a function_call_output.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// inputPart is one part of an input item's content.
type inputPart struct {
	Type       string            `json:"type"`
	Text       string            `json:"text"`
	Refusal    string            `json:"refusal"`
	Breakpoint *promptBreakpoint `json:"prompt_cache_breakpoint"`
}

// Kinds of conversation items.
const (
	itemMessage    = "message"
	itemCall       = "function_call"
	itemCallOutput = "function_call_output"
)

// respItem is one item of a Responses conversation, input or output, as the
// simulator keeps it: a message (role and text parts), a function call (call
// ID, name, arguments) or a function call's output (call ID, text parts).
type respItem struct {
	kind      string
	role      string
	parts     []chatPart
	callID    string
	name      string
	arguments string
}

// parsedResponses is a Responses request that passed validation.
type parsedResponses struct {
	req       responsesRequest
	items     []respItem // the conversation: the previous response's, then input
	maxTokens int
	store     bool
}

// cacheParams returns the request's cache parameters.
func (p *parsedResponses) cacheParams() openaiCacheParams {
	c := openaiCacheParams{retention: p.req.PromptCacheRetention}
	if o := p.req.PromptCacheOptions; o != nil {
		c.mode, c.ttl = o.Mode, o.TTL
	}
	return c
}

// parseResponsesRequest decodes and validates a Responses body, all but
// previous_response_id, which needs the store. The checks and their messages
// follow what the API answers with 400 invalid_request_error.
func parseResponsesRequest(body []byte) (*parsedResponses, *apiError) {
	p := &parsedResponses{store: true, maxTokens: defaultChatMaxTokens}
	if err := json.Unmarshal(body, &p.req); err != nil {
		return nil, chatInvalid("", "", "We could not parse the JSON body of your request. "+
			"(HINT: This likely means you aren't using your HTTP library correctly.)")
	}
	req := &p.req
	switch {
	case req.Model == "":
		return nil, chatInvalid("model", "missing_required_parameter",
			"Missing required parameter: 'model'.")
	case len(bytes.TrimSpace(req.Input)) == 0 && req.PreviousResponseID == "":
		return nil, chatInvalid("input", "missing_required_parameter",
			"Missing required parameter: 'input'.")
	}
	if req.Store != nil {
		p.store = *req.Store
	}
	if n := req.MaxOutputTokens; n != nil {
		if *n < minOutputTokens {
			return nil, chatInvalid("max_output_tokens", "integer_below_min_value",
				"Invalid 'max_output_tokens': integer below minimum value. Expected a value "+
					">= %d, but got %d instead.", minOutputTokens, *n)
		}
		p.maxTokens = *n
	}
	if e := checkResponsesTools(req.Tools); e != nil {
		return nil, e
	}
	var e *apiError
	p.items, e = parseInput(req.Input)
	return p, e
}

func checkResponsesTools(tools []responsesTool) *apiError {
	for i, t := range tools {
		where := "tools[" + itoa(i) + "]"
		if t.Type != "function" {
			return chatInvalid(where+".type", "invalid_value", "Invalid value: '%s'. The "+
				"simulator supports 'function' tools only.", t.Type)
		}
		if t.Name == "" {
			return chatInvalid(where+".name", "missing_required_parameter",
				"Missing required parameter: '%s.name'.", where)
		}
	}
	return nil
}

// parseInput decodes the input: a string (one user message) or an array of
// items; absent or null is no items.
func parseInput(raw json.RawMessage) ([]respItem, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, chatInvalid("input", "", "Invalid 'input': %v.", err)
		}
		return []respItem{{kind: itemMessage, role: "user",
			parts: []chatPart{{Type: "text", Text: s}}}}, nil
	}
	var list []inputItem
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, chatInvalid("input", "", "Invalid 'input': expected a string or an "+
			"array of input items.")
	}
	items := make([]respItem, 0, len(list))
	for i, it := range list {
		item, e := parseInputItem("input["+itoa(i)+"]", it)
		if e != nil {
			return nil, e
		}
		items = append(items, item)
	}
	return items, nil
}

func parseInputItem(where string, it inputItem) (respItem, *apiError) {
	switch {
	case it.Type == itemMessage || (it.Type == "" && it.Role != ""):
		return parseMessageItem(where, it)
	case it.Type == itemCall:
		if it.CallID == "" || it.Name == "" {
			return respItem{}, chatInvalid(where, "missing_required_parameter",
				"Missing required parameter: '%s.call_id' or '%s.name'.", where, where)
		}
		return respItem{kind: itemCall, callID: it.CallID, name: it.Name,
			arguments: it.Arguments}, nil
	case it.Type == itemCallOutput:
		if it.CallID == "" {
			return respItem{}, chatInvalid(where+".call_id", "missing_required_parameter",
				"Missing required parameter: '%s.call_id'.", where)
		}
		parts, e := parseParts(where+".output", "tool", it.Output)
		return respItem{kind: itemCallOutput, callID: it.CallID, parts: parts}, e
	}
	return respItem{}, chatInvalid(where+".type", "invalid_value", "Invalid value: '%s'. "+
		"The simulator supports 'message', 'function_call' and 'function_call_output' "+
		"items.", it.Type)
}

func parseMessageItem(where string, it inputItem) (respItem, *apiError) {
	switch it.Role {
	case "user", "assistant", "system", "developer":
	default:
		return respItem{}, chatInvalid(where+".role", "invalid_value", "Invalid value: "+
			"'%s'. Supported values are: 'assistant', 'system', 'developer', and 'user'.",
			it.Role)
	}
	parts, e := parseParts(where+".content", it.Role, it.Content)
	return respItem{kind: itemMessage, role: it.Role, parts: parts}, e
}

// parseParts decodes a content (or a function call's output): a string, or an
// array of parts of the types the role may send. Breakpoints are checked; the
// assistant's parts carry none.
func parseParts(where, role string, raw json.RawMessage) ([]chatPart, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, chatInvalid(where, "missing_required_parameter",
			"Missing required parameter: '%s'.", where)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, chatInvalid(where, "", "Invalid '%s': %v.", where, err)
		}
		return []chatPart{{Type: "text", Text: s}}, nil
	}
	var list []inputPart
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, chatInvalid(where, "", "Invalid '%s': expected a string or an array "+
			"of content parts.", where)
	}
	parts := make([]chatPart, 0, len(list))
	for j, ip := range list {
		part, e := checkPart(where+"["+itoa(j)+"]", role, ip)
		if e != nil {
			return nil, e
		}
		parts = append(parts, part)
	}
	return parts, nil
}

func checkPart(where, role string, ip inputPart) (chatPart, *apiError) {
	want := []string{"input_text"}
	if role == "assistant" {
		want = []string{"output_text", "refusal"}
	}
	if !slices.Contains(want, ip.Type) {
		return chatPart{}, chatInvalid(where+".type", "invalid_value", "Invalid value: "+
			"'%s'. Supported values are: '%s'.", ip.Type, strings.Join(want, "' and '"))
	}
	if role == "assistant" && ip.Breakpoint != nil {
		return chatPart{}, chatInvalid(where+".prompt_cache_breakpoint", "",
			"Invalid parameter: prompt_cache_breakpoint is not supported on assistant "+
				"content.")
	}
	if e := checkBreakpoint(where+".prompt_cache_breakpoint", ip.Breakpoint); e != nil {
		return chatPart{}, e
	}
	text := ip.Text
	if ip.Type == "refusal" {
		text = ip.Refusal
	}
	return chatPart{Type: "text", Text: text, Breakpoint: ip.Breakpoint}, nil
}

// checkCallPairs enforces that every function_call_output answers a
// function_call before it, and that every function_call is answered.
func checkCallPairs(items []respItem) *apiError {
	called := map[string]bool{}
	answered := map[string]bool{}
	for _, it := range items {
		switch it.kind {
		case itemCall:
			called[it.callID] = true
		case itemCallOutput:
			if !called[it.callID] {
				return chatInvalid("input", "", "No tool call found for function call "+
					"output with call_id %s.", it.callID)
			}
			answered[it.callID] = true
		}
	}
	for _, it := range items {
		if it.kind == itemCall && !answered[it.callID] {
			return chatInvalid("input", "", "No tool output found for function call %s.",
				it.callID)
		}
	}
	return nil
}
