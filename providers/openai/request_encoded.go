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

// marshalEncoded is marshalRequest reusing, from req.Encoded, the bytes of the
// messages an earlier request of the conversation encoded: the same checks, the
// same bytes. Without a cache it is marshalRequest.
func marshalEncoded(req *providers.Request, c *Compat) ([]byte, error) {
	if req == nil || req.Encoded == nil {
		return marshalRequest(req, c)
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	messages, err := buildMessages(req.System, req.Messages)
	if err != nil {
		return nil, err
	}
	empty := *req
	empty.System, empty.Messages = "", []providers.Message{{Role: providers.RoleUser}}
	head, err := marshalRequest(&empty, c)
	if err != nil {
		return nil, err
	}
	// The head has one empty user message where the messages go, right after the
	// model: the model is a JSON string, so it cannot hold the marker unescaped.
	marker := []byte(`,"messages":[{"role":"user","content":""}]`)
	at := bytes.Index(head, marker)
	if at < 0 {
		return nil, fmt.Errorf("%w: no messages list in the body", ErrInvalidRequest)
	}
	body := make([]byte, 0, len(head)+encodedSize(req))
	body = append(body, head[:at+len(`,"messages":[`)]...)
	offset := len(messages) - len(req.Messages) // 1 when the system prompt leads
	for i := range messages {
		if i > 0 {
			body = append(body, ',')
		}
		m := &providers.Message{Key: systemKey, Role: "system", Text: req.System}
		if i >= offset {
			m = &req.Messages[i-offset]
		}
		if body, err = appendMessage(body, req.Encoded, m, &messages[i]); err != nil {
			return nil, err
		}
	}
	body = append(body, head[at+len(marker)-1:]...)
	req.Encoded.Sweep()
	return body, nil
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

// appendMessage appends the wire message w of the neutral message m, from the
// cache when it has it.
func appendMessage(body []byte, cache *providers.EncodedCache, m *providers.Message,
	w *wireMessage) ([]byte, error) {
	if data, ok := cache.Get(providerName, m, ""); ok {
		return append(body, data...), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	cache.Put(providerName, m, "", data)
	return append(body, data...), nil
}
