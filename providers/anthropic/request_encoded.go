package anthropic

import (
	"bytes"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// marshalEncoded is MarshalRequest reusing, from req.Encoded, the bytes of the
// messages an earlier request of the conversation encoded: the same checks, the
// same bytes. Without a cache it is MarshalRequest.
func marshalEncoded(req *providers.Request) ([]byte, error) {
	if req == nil || req.Encoded == nil {
		return MarshalRequest(req)
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	wire := wireRequest{Model: req.Model, MaxTokens: req.MaxTokens, Stream: true}
	tools, err := buildTools(req.Tools)
	if err != nil {
		return nil, err
	}
	wire.Tools = tools
	if req.System != "" {
		wire.System = []wireBlock{{Type: "text", Text: req.System}}
	}
	messages, wireOf, err := buildMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	wire.Messages = messages
	if err := placeBreakpoints(&wire, wireOf, req.Cache); err != nil {
		return nil, err
	}

	// Everything but the messages, with an empty list where they go: nothing
	// after the list (the request's cache_control, stream) can hold its text.
	wire.Messages = []wireMessage{}
	head, err := encode(&wire)
	if err != nil {
		return nil, err
	}
	at := bytes.LastIndex(head, []byte(`"messages":[]`))
	if at < 0 {
		return nil, fmt.Errorf("%w: no messages list in the body", ErrInvalidRequest)
	}
	at += len(`"messages":[`)
	body := make([]byte, 0, len(head)+encodedSize(req.Messages))
	body = append(body, head[:at]...)
	body, err = appendMessages(body, req, messages, wireOf)
	if err != nil {
		return nil, err
	}
	body = append(body, head[at:]...)
	req.Encoded.Sweep()
	return body, nil
}

// encodedSize estimates the bytes of the messages' JSON, to size the body once.
func encodedSize(msgs []providers.Message) int {
	n := 0
	for i := range msgs {
		n += len(msgs[i].Text) + 64
		for _, c := range msgs[i].ToolCalls {
			n += len(c.Arguments) + 64
		}
	}
	return n
}

// appendMessages appends the wire messages, each neutral message's blocks from
// the cache when it has them, encoded and stored when not.
func appendMessages(body []byte, req *providers.Request, messages []wireMessage,
	wireOf []int) ([]byte, error) {
	next := make([]int, len(messages)) // the next block of each wire message
	for i := range req.Messages {
		m := &req.Messages[i]
		w := wireOf[i]
		blocks := messages[w].Content[next[w] : next[w]+blockCount(m)]
		first := i == 0 || wireOf[i-1] != w
		last := i == len(req.Messages)-1 || wireOf[i+1] != w
		if first && w > 0 {
			body = append(body, ',')
		}
		if first {
			body = append(body, `{"role":"`+messages[w].Role+`","content":[`...)
		}
		if len(blocks) > 0 && next[w] > 0 {
			body = append(body, ',')
		}
		next[w] += len(blocks)
		var err error
		if body, err = appendBlocks(body, req.Encoded, m, blocks); err != nil {
			return nil, err
		}
		if last {
			body = append(body, "]}"...)
		}
	}
	return body, nil
}

// blockCount is how many content blocks buildMessages makes of m.
func blockCount(m *providers.Message) int {
	switch m.Role {
	case providers.RoleAssistant:
		n := len(m.ToolCalls)
		if m.Text != "" {
			n++
		}
		return n
	case providers.RoleUser:
		if m.Text == "" {
			return 0
		}
	}
	return 1
}

// appendBlocks appends the blocks of one neutral message, comma-separated. The
// variant is the cache_control of its last block: a breakpoint that moves
// changes only the bytes of the messages it leaves and reaches.
func appendBlocks(body []byte, cache *providers.EncodedCache, m *providers.Message,
	blocks []wireBlock) ([]byte, error) {
	if len(blocks) == 0 {
		return body, nil
	}
	variant := ""
	if cc := blocks[len(blocks)-1].CacheControl; cc != nil {
		variant = "cc:" + cc.TTL
	}
	if data, ok := cache.Get(providerName, m, variant); ok {
		return append(body, data...), nil
	}
	var data []byte
	for j := range blocks {
		b, err := encodeBlock(&blocks[j])
		if err != nil {
			return nil, err
		}
		if j > 0 {
			data = append(data, ',')
		}
		data = append(data, b...)
	}
	cache.Put(providerName, m, variant, data)
	return append(body, data...), nil
}

// encodeBlock encodes one block as encode encodes it within the request.
func encodeBlock(b *wireBlock) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
