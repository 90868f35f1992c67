package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// defaultChatMaxTokens bounds an answer when the request sets neither
// max_completion_tokens nor max_tokens.
const defaultChatMaxTokens = 16384

// parsedChat is a Chat Completions request that passed validation, with the text
// of every message's content decoded.
type parsedChat struct {
	req       chatRequest
	texts     []string     // texts[i]: the text of message i's content
	parts     [][]chatPart // parts[i]: the text parts of message i's content
	maxTokens int
}

// cacheParams returns the request's cache parameters.
func (p *parsedChat) cacheParams() openaiCacheParams {
	c := openaiCacheParams{retention: p.req.PromptCacheRetention}
	if o := p.req.PromptCacheOptions; o != nil {
		c.mode, c.ttl = o.Mode, o.TTL
	}
	return c
}

// chatInvalid returns a 400 invalid_request_error with an OpenAI param and code.
func chatInvalid(param, code, format string, args ...any) *apiError {
	e := invalidRequest(format, args...)
	e.param, e.code = param, code
	return e
}

// parseChatRequest decodes and validates a Chat Completions body. The checks and
// their messages follow what the API answers with 400 invalid_request_error.
func parseChatRequest(body []byte) (*parsedChat, *apiError) {
	var p parsedChat
	if err := json.Unmarshal(body, &p.req); err != nil {
		return nil, chatInvalid("", "", "We could not parse the JSON body of your request. "+
			"(HINT: This likely means you aren't using your HTTP library correctly.)")
	}
	req := &p.req
	switch {
	case req.Model == "":
		return nil, chatInvalid("", "", "you must provide a model parameter")
	case req.Messages == nil:
		return nil, chatInvalid("messages", "missing_required_parameter",
			"Missing required parameter: 'messages'.")
	case len(req.Messages) == 0:
		return nil, chatInvalid("messages", "empty_array", "Invalid 'messages': empty "+
			"array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	var e *apiError
	if p.maxTokens, e = chatMaxTokens(req); e != nil {
		return nil, e
	}
	for i := range req.Messages {
		if e := p.addContent(i); e != nil {
			return nil, e
		}
		if e := checkChatMessage(req.Messages, i); e != nil {
			return nil, e
		}
	}
	for i, m := range req.Messages {
		if m.Role == "assistant" {
			if e := checkCallsAnswered(req.Messages, i); e != nil {
				return nil, e
			}
		}
	}
	return &p, nil
}

// addContent decodes the content of message i and checks its breakpoints:
// known values, and none on assistant messages.
func (p *parsedChat) addContent(i int) *apiError {
	m := p.req.Messages[i]
	where := "messages.[" + itoa(i) + "].content"
	parts, err := contentParts(m.Content)
	if err != nil {
		return chatInvalid(where, "", "Invalid value for 'content': %v.", err)
	}
	text, _ := contentText(m.Content) // the same decoding succeeded just above
	for j, part := range parts {
		param := where + ".[" + itoa(j) + "].prompt_cache_breakpoint"
		if part.Breakpoint != nil && m.Role == "assistant" {
			return chatInvalid(param, "", "Invalid parameter: prompt_cache_breakpoint "+
				"is not supported on assistant messages.")
		}
		if e := checkBreakpoint(param, part.Breakpoint); e != nil {
			return e
		}
	}
	p.texts = append(p.texts, text)
	p.parts = append(p.parts, parts)
	return nil
}

func chatMaxTokens(req *chatRequest) (int, *apiError) {
	limit, name := req.MaxCompletionTokens, "max_completion_tokens"
	if limit == nil {
		limit, name = req.MaxTokens, "max_tokens"
	}
	if limit == nil {
		return defaultChatMaxTokens, nil
	}
	if *limit < 1 {
		return 0, chatInvalid(name, "integer_below_min_value", "Invalid '%s': integer "+
			"below minimum value. Expected a value >= 1, but got %d instead.", name, *limit)
	}
	return *limit, nil
}

// checkChatMessage checks message i: a known role, and for a tool message that
// it answers a tool call of the assistant message before the run of tool
// messages it is in.
func checkChatMessage(msgs []chatMessage, i int) *apiError {
	m := msgs[i]
	switch m.Role {
	case "system", "developer", "user", "assistant":
		return nil
	case "tool":
		return checkToolAnswers(msgs, i)
	}
	return chatInvalid("messages.["+itoa(i)+"].role", "invalid_value", "Invalid value: "+
		"'%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "+
		"and 'developer'.", m.Role)
}

func checkToolAnswers(msgs []chatMessage, i int) *apiError {
	k := i - 1
	for k >= 0 && msgs[k].Role == "tool" {
		k--
	}
	if k < 0 || msgs[k].Role != "assistant" || len(msgs[k].ToolCalls) == 0 {
		return chatInvalid("messages.["+itoa(i)+"].role", "", "Invalid parameter: "+
			"messages with role 'tool' must be a response to a preceeding message with "+
			"'tool_calls'.")
	}
	for _, c := range msgs[k].ToolCalls {
		if c.ID == msgs[i].ToolCallID {
			return nil
		}
	}
	return chatInvalid("messages.["+itoa(i)+"].tool_call_id", "", "Invalid parameter: "+
		"'tool_call_id' of '%s' not found in 'tool_calls' of previous message.",
		msgs[i].ToolCallID)
}

// checkCallsAnswered checks that the tool calls of assistant message i are all
// answered by the tool messages that follow it.
func checkCallsAnswered(msgs []chatMessage, i int) *apiError {
	answered := map[string]bool{}
	for k := i + 1; k < len(msgs) && msgs[k].Role == "tool"; k++ {
		answered[msgs[k].ToolCallID] = true
	}
	var missing []string
	for _, c := range msgs[i].ToolCalls {
		if !answered[c.ID] {
			missing = append(missing, c.ID)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return chatInvalid("messages.["+itoa(i)+"].role", "", "An assistant message with "+
		"'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "+
		"The following tool_call_ids did not have response messages: %s",
		strings.Join(missing, ", "))
}

// chatSequence lays the request out as its canonical token sequence: tools
// first, then every message with its framing, then the reply's priming.
func chatSequence(p *parsedChat, counter *tokenCounter) *tokenSeq {
	q := newTokenSeq(p.req.Model, counter)
	for _, t := range p.req.Tools {
		q.marker(chatToolOverhead, "tool", t.Type)
		q.text(t.Function.Name)
		q.text(t.Function.Description)
		q.text(compactJSON(t.Function.Parameters))
		q.boundary()
	}
	for i, m := range p.req.Messages {
		q.marker(chatMessageOverhead, "message", m.Role, m.Name)
		if m.Role == "tool" {
			q.text(m.ToolCallID)
		}
		q.parts(p.parts[i])
		for _, c := range m.ToolCalls {
			q.marker(0, "call", c.ID)
			q.text(c.Function.Name)
			q.text(c.Function.Arguments)
			q.boundary()
		}
		q.boundary()
	}
	q.endInput()
	q.marker(chatReplyOverhead, "reply")
	return q
}

// chatHistory reduces a request to its conversation, as messagesHistory does for
// the Messages API, so one conversation gets the same answer over both.
func chatHistory(p *parsedChat) history {
	var h history
	for i, m := range p.req.Messages {
		switch m.Role {
		case "user":
			h = append(h, turn{role: turnUser, text: p.texts[i]})
		case "tool":
			h = append(h, turn{role: turnTool, text: p.texts[i]})
		case "assistant":
			if p.texts[i] != "" {
				h = append(h, turn{role: turnAssistant, text: p.texts[i]})
			}
			for _, c := range m.ToolCalls {
				h = append(h, turn{role: turnCall,
					text: c.Function.Name + "\n" + compactJSON([]byte(c.Function.Arguments))})
			}
		}
	}
	return h
}

// chatBodyError turns a failure to read the body into the error answered for it.
func chatBodyError(err error) *apiError {
	if errors.Is(err, errBodyTooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge,
			kind: "invalid_request_error", message: "Request body too large."}
	}
	return chatInvalid("", "", "could not read the request body")
}
