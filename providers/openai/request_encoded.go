package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/stated-dev/stated/providers"
)

// systemKey is the Key the system prompt is cached under: no message's.
const systemKey = math.MaxUint64

// marshalEncoded is marshalRequest reusing, from req.Encoded, the bytes an
// earlier request of the conversation encoded: those of its messages, and of its
// tools. The same checks, the same bytes. Only the messages the cache does not
// hold are translated to wire messages, so what a request costs beyond copying
// bytes does not grow with the conversation. Without a cache it is
// marshalRequest.
func marshalEncoded(req *providers.Request, c *Compat) ([]byte, error) {
	if req == nil || req.Encoded == nil {
		return marshalRequest(req, c)
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	// The head has one empty user message where the messages go, right after the
	// model, and no tools, which go right after the messages: the model is a JSON
	// string, so it cannot hold the marker unescaped.
	empty := *req
	empty.System, empty.Tools = "", nil
	empty.Messages = []providers.Message{{Role: providers.RoleUser}}
	head, err := marshalRequest(&empty, c)
	if err != nil {
		return nil, err
	}
	marker := []byte(`,"messages":[{"role":"user","content":""}]`)
	at := bytes.Index(head, marker)
	if at < 0 {
		return nil, fmt.Errorf("%w: no messages list in the body", ErrInvalidRequest)
	}
	body := make([]byte, 0, len(head)+encodedSize(req))
	body = append(body, head[:at+len(`,"messages":[`)]...)
	if body, err = appendMessages(body, req); err != nil {
		return nil, err
	}
	body = append(body, ']')
	tools, err := encodedTools(req)
	if err != nil {
		return nil, err
	}
	body = append(body, tools...)
	body = append(body, head[at+len(marker):]...)
	req.Encoded.Sweep()
	return body, nil
}

// appendMessages appends the wire messages, the system prompt first when there
// is one, each from the cache when it has it, built, encoded and stored when not.
// It returns buildMessages' error for a message it refuses.
func appendMessages(body []byte, req *providers.Request) ([]byte, error) {
	var err error
	if req.System != "" {
		m := &providers.Message{Key: systemKey, Role: "system", Text: req.System}
		if body, err = appendMessage(body, req.Encoded, m); err != nil {
			return nil, err
		}
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case providers.RoleUser, providers.RoleTool:
		case providers.RoleAssistant:
			if m.Text == "" && len(m.ToolCalls) == 0 {
				return nil, fmt.Errorf("%w: message %d: empty assistant message",
					ErrInvalidRequest, i)
			}
		default:
			return nil, fmt.Errorf("%w: message %d: unknown role %q", ErrInvalidRequest,
				i, m.Role)
		}
		if i > 0 || req.System != "" {
			body = append(body, ',')
		}
		if body, err = appendMessage(body, req.Encoded, m); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// encodedTools returns `,"tools":[...]`, the tools field as it follows the
// messages, from the cache when it has it; nothing when there are no tools.
func encodedTools(req *providers.Request) ([]byte, error) {
	if len(req.Tools) == 0 {
		return nil, nil
	}
	cache := req.Encoded
	if data, ok := cache.GetPreamble(providerName, "tools", "", req.Tools); ok {
		return data, nil
	}
	tools, err := buildTools(req.Tools)
	if err != nil {
		return nil, err
	}
	b, err := encodeValue(tools)
	if err != nil {
		return nil, err
	}
	data := append([]byte(`,"tools":`), b...)
	cache.PutPreamble(providerName, "tools", "", req.Tools, data)
	return data, nil
}

// encodedSize estimates the bytes of the messages' JSON, to size the body once.
func encodedSize(req *providers.Request) int {
	n := len(req.System) + 64
	for i := range req.Messages {
		n += len(req.Messages[i].Text) + 64
		for _, c := range req.Messages[i].ToolCalls {
			n += len(c.Arguments) + 96
		}
	}
	return n
}

// appendMessage appends the wire message of the neutral message m, from the
// cache when it has it.
func appendMessage(body []byte, cache *providers.EncodedCache,
	m *providers.Message) ([]byte, error) {
	if data, ok := cache.Get(providerName, m, ""); ok {
		return append(body, data...), nil
	}
	data, err := encodeValue(wireMessageOf(m))
	if err != nil {
		return nil, err
	}
	cache.Put(providerName, m, "", data)
	return append(body, data...), nil
}

// wireMessageOf is the wire message buildMessages makes of m, the system prompt
// included.
func wireMessageOf(m *providers.Message) *wireMessage {
	switch m.Role {
	case providers.RoleAssistant:
		w := assistantMessage(m)
		return &w
	case providers.RoleTool:
		return &wireMessage{Role: "tool", ToolCallID: m.ToolCallID, Content: &m.Text}
	}
	return &wireMessage{Role: string(m.Role), Content: &m.Text} // user or system
}

// encodeValue encodes one part of a request as encode encodes it within the
// request.
func encodeValue(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
