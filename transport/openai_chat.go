package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// chatRequest is the body of POST /v1/chat/completions. Fields not listed are
// accepted and ignored (temperature, top_p, seed, user, metadata, ...).
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
	Stop                json.RawMessage `json:"stop"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Logprobs            bool            `json:"logprobs"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type chatToolCall struct {
	Index    *int         `json:"index,omitempty"` // stream chunks only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// serveChat answers POST /v1/chat/completions through a session.
func (a *openaiAPI) serveChat(w http.ResponseWriter, r *http.Request) {
	tenant, aerr := a.tenant(r, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var req chatRequest
	if aerr := decodeBody(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.checkChat(&req); aerr != nil {
		writeError(w, aerr)
		return
	}
	t, aerr := a.chatThread(&req)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	sid := r.Header.Get(SessionHeader)
	if sid != "" {
		t.newFrom = 0 // a client that names its session sends only new messages
	}
	for i, id := range turnIDs(r, len(t.newItems())) {
		t.items[t.newFrom+i].TurnID = id
	}

	var p placed
	var err error
	var keys []historyKey
	if sid != "" {
		p, err = a.placeNamed(r.Context(), tenant, sid, &req, t)
	} else {
		keys = t.chainKeys()
		p, err = a.placeStateless(r.Context(), tenant, t, keys)
	}
	if err != nil {
		writeError(w, a.apiErrorOf(err))
		return
	}
	w.Header().Set(SessionHeader, p.sess.ID())

	// The answer runs on without the client; following it to its end even then
	// lets a stateless client's next request find this session.
	ctx := context.WithoutCancel(r.Context())
	a.answerChat(ctx, w, &req, p, func(e *session.Event) {
		if keys != nil {
			a.remember(ctx, tenant, keys[len(keys)-1], p.sess, e)
		}
	})
}

// checkChat refuses what the chat completions of this server do not do, rather
// than answering as if it had been done.
func (a *openaiAPI) checkChat(req *chatRequest) *apiError {
	switch {
	case req.N != nil && *req.N != 1:
		return invalidRequest("n", "only n=1 is supported")
	case len(req.Stop) > 0 && string(req.Stop) != "null":
		return invalidRequest("stop", "stop sequences are not supported")
	case req.Logprobs:
		return invalidRequest("logprobs", "logprobs are not supported")
	case !textFormat(req.ResponseFormat):
		return invalidRequest("response_format", "only the text response format is supported")
	case !autoToolChoice(req.ToolChoice):
		return invalidRequest("tool_choice", "only tool_choice \"auto\" is supported")
	case len(req.Messages) == 0:
		return invalidRequest("messages", "messages must not be empty")
	}
	return a.checkModel(req.Model)
}

func textFormat(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var f struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &f) == nil && f.Type == "text"
}

func autoToolChoice(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null" || s == `"auto"`
}

// chatThread turns a chat request into the session's terms. System and developer
// messages before the first other message make the system prompt.
func (a *openaiAPI) chatThread(req *chatRequest) (*thread, *apiError) {
	st := session.Settings{Model: req.Model}
	switch {
	case req.MaxCompletionTokens != nil:
		st.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		st.MaxTokens = *req.MaxTokens
	}
	for _, tl := range req.Tools {
		if tl.Type != "function" {
			return nil, invalidRequest("tools", "only function tools are supported")
		}
		st.Tools = append(st.Tools, providers.Tool{Name: tl.Function.Name,
			Description: tl.Function.Description, InputSchema: tl.Function.Parameters})
	}

	t := &thread{}
	var system []string
	for i := range req.Messages {
		m := &req.Messages[i]
		text, aerr := chatContent(m.Content)
		if aerr != nil {
			return nil, aerr
		}
		it := session.Item{Text: text}
		switch m.Role {
		case "system", "developer":
			if len(t.items) > 0 {
				return nil, invalidRequest("messages", "system and developer messages are "+
					"taken only before the first user message")
			}
			system = append(system, text)
			continue
		case "user":
			it.Kind = session.KindUser
		case "assistant":
			it.Kind = session.KindAssistant
			for _, c := range m.ToolCalls {
				it.ToolCalls = append(it.ToolCalls, providers.ToolCall{ID: c.ID,
					Name: c.Function.Name, Arguments: c.Function.Arguments})
			}
		case "tool":
			it.Kind, it.ToolCallID = session.KindToolResult, m.ToolCallID
		default:
			return nil, invalidRequest("messages", "message role %q is not supported", m.Role)
		}
		t.items = append(t.items, it)
	}
	st.System = strings.Join(system, "\n\n")
	return a.finishThread(t, st)
}

// finishThread normalizes the settings of t and splits it after its last answer.
func (a *openaiAPI) finishThread(t *thread, st session.Settings) (*thread, *apiError) {
	norm, err := a.sessions.Normalize(st)
	if err != nil {
		return nil, invalidRequest("", "%s", err.Error())
	}
	t.settings = norm
	t.splitAtLastAnswer()
	if len(t.newItems()) == 0 {
		return nil, invalidRequest("messages", "the last message must be a user or tool message")
	}
	return t, nil
}

// chatContent reads a message's content: a string, null, or an array of text
// parts (joined by newlines). Images, audio and files are not supported.
func chatContent(raw json.RawMessage) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalidRequest("messages", "content must be a string or an array of parts")
	}
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		switch p.Type {
		case "text", "input_text", "output_text":
			texts = append(texts, p.Text)
		case "refusal":
			texts = append(texts, p.Refusal)
		default:
			return "", invalidRequest("messages", "content parts of type %q are not supported",
				p.Type)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// placeNamed puts the new messages of a request that names its session: they are
// all new, and the session's own settings apply. A request whose model, system
// messages or tools differ from the session's is refused rather than answered
// with settings it did not ask for.
func (a *openaiAPI) placeNamed(ctx context.Context, tenant, sid string, req *chatRequest,
	t *thread) (placed, error) {
	s, err := a.sessions.Get(ctx, tenant, sid)
	if err != nil {
		return placed{}, err
	}
	have := s.Info().Settings
	switch {
	case have.Model != t.settings.Model:
		return placed{}, invalidRequest("model", "the session answers with model %q",
			have.Model)
	case t.settings.System != "" && t.settings.System != have.System:
		return placed{}, invalidRequest("messages",
			"the system messages differ from the session's; send none to keep the session's")
	case len(req.Tools) > 0 && !sameSettings(&session.Settings{Tools: t.settings.Tools},
		&session.Settings{Tools: have.Tools}):
		return placed{}, invalidRequest("tools",
			"the tools differ from the session's; send none to keep the session's")
	}
	fresh := t.items
	ext, err := s.Extend(ctx, session.AnySeq, fresh, true)
	if err != nil {
		return placed{}, err
	}
	return placed{sess: s, ext: ext, inputFrom: firstSeq(ext, len(fresh))}, nil
}
