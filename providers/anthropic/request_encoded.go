package anthropic

import (
	"bytes"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// marshalEncoded is MarshalRequest reusing, from req.Encoded, the bytes an
// earlier request of the conversation encoded: those of its messages, and of its
// system prompt and tools. The same checks, the same bytes. Only the messages
// the cache does not hold are translated to wire blocks, so what a request costs
// beyond copying bytes does not grow with the conversation. Without a cache it is
// MarshalRequest.
func marshalEncoded(req *providers.Request) ([]byte, error) {
	if req == nil || req.Encoded == nil {
		return MarshalRequest(req)
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	sys, err := systemMark(req)
	if err != nil {
		return MarshalRequest(req) // the same error, after the same checks before it
	}
	preamble, err := encodedPreamble(req, sys)
	if err != nil {
		return nil, err
	}
	nWire, err := checkLayout(req.Messages)
	if err != nil {
		return nil, err
	}
	marks, err := checkedMarks(req.System != "" || len(req.Tools) > 0, nWire,
		len(req.Messages), func(i int) int { return wireIndex(req.Messages, i) }, req.Cache)
	if err != nil {
		return nil, err
	}

	// Everything but the tools, the system prompt and the messages, with an empty
	// list where the messages go: nothing after the list (the request's
	// cache_control, stream) can hold its text.
	wire := wireRequest{Model: req.Model, MaxTokens: req.MaxTokens, Stream: true,
		Messages: []wireMessage{}}
	if auto := markAt(marks, nWire); auto != nil {
		wire.CacheControl = auto.control()
	}
	head, err := encode(&wire)
	if err != nil {
		return nil, err
	}
	list := []byte(`"messages":[`)
	at := bytes.LastIndex(head, []byte(`"messages":[]`))
	if at < 0 {
		return nil, fmt.Errorf("%w: no messages list in the body", ErrInvalidRequest)
	}
	body := make([]byte, 0, len(head)+len(preamble)+encodedSize(req.Messages))
	body = append(body, head[:at]...)
	body = append(body, preamble...)
	body = append(body, list...)
	if body, err = appendMessages(body, req, marks); err != nil {
		return nil, err
	}
	body = append(body, head[at+len(list):]...)
	req.Encoded.Sweep()
	return body, nil
}

// systemMark is the plan's system breakpoint, nil when it places none; its error
// is planMarks' for a TTL it does not know.
func systemMark(req *providers.Request) (*mark, error) {
	defaultTTL, err := cacheTTL("", req.Cache.TTL)
	if err != nil {
		return nil, err
	}
	ttl, err := cacheTTL(req.Cache.SystemTTL, defaultTTL)
	if err != nil {
		return nil, err
	}
	if !req.Cache.System || req.System == "" && len(req.Tools) == 0 {
		return nil, nil
	}
	return &mark{pos: systemPos, ttl: ttl}, nil
}

// encodedPreamble returns the bytes of the tools and the system prompt, each
// field followed by a comma, from the cache when it has them. Their variant is
// the system breakpoint sys (nil for none), the one mark they can carry.
func encodedPreamble(req *providers.Request, sys *mark) ([]byte, error) {
	variant := ""
	if sys != nil {
		variant = "cc:" + sys.ttl
	}
	cache := req.Encoded
	if data, ok := cache.GetPreamble(providerName, variant, req.System, req.Tools); ok {
		return data, nil
	}
	tools, err := buildTools(req.Tools)
	if err != nil {
		return nil, err
	}
	var system []wireBlock
	if req.System != "" {
		system = []wireBlock{{Type: "text", Text: req.System}}
	}
	switch {
	case sys != nil && len(system) > 0:
		system[0].CacheControl = sys.control()
	case sys != nil:
		tools[len(tools)-1].CacheControl = sys.control()
	}
	var data []byte
	if data, err = appendField(data, "tools", tools, len(tools) > 0); err != nil {
		return nil, err
	}
	if data, err = appendField(data, "system", system, len(system) > 0); err != nil {
		return nil, err
	}
	cache.PutPreamble(providerName, variant, req.System, req.Tools, data)
	return data, nil
}

// appendField appends `"name":value,` when present is true, as encode writes the
// field within the request.
func appendField(data []byte, name string, value any, present bool) ([]byte, error) {
	if !present {
		return data, nil
	}
	b, err := encodeValue(value)
	if err != nil {
		return nil, err
	}
	data = append(data, `"`+name+`":`...)
	data = append(data, b...)
	return append(data, ','), nil
}

// checkLayout checks the messages as buildMessages does, with the same errors,
// without building their blocks, and returns how many wire messages they make.
func checkLayout(msgs []providers.Message) (int, error) {
	n := 0
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case providers.RoleUser:
			if !joinsPrevious(msgs, i) && m.Text == "" {
				return 0, fmt.Errorf("%w: message %d: empty user message",
					ErrInvalidRequest, i)
			}
		case providers.RoleAssistant:
			if m.Text == "" && len(m.ToolCalls) == 0 {
				return 0, fmt.Errorf("%w: message %d: empty assistant message",
					ErrInvalidRequest, i)
			}
		case providers.RoleTool:
		default:
			return 0, fmt.Errorf("%w: message %d: unknown role %q",
				ErrInvalidRequest, i, m.Role)
		}
		if !joinsPrevious(msgs, i) {
			n++
		}
	}
	return n, nil
}

// joinsPrevious reports whether buildMessages puts message i into the wire
// message of message i-1: a tool result or a user message right after a tool
// result, since the API wants user and assistant to alternate.
func joinsPrevious(msgs []providers.Message, i int) bool {
	return i > 0 && msgs[i-1].Role == providers.RoleTool &&
		(msgs[i].Role == providers.RoleTool || msgs[i].Role == providers.RoleUser)
}

// wireIndex is the wire message buildMessages puts message i into. It walks the
// messages before i: the cache plan names a few messages per request.
func wireIndex(msgs []providers.Message, i int) int {
	w := -1
	for j := 0; j <= i; j++ {
		if !joinsPrevious(msgs, j) {
			w++
		}
	}
	return w
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
// the cache when it has them, built, encoded and stored when not.
func appendMessages(body []byte, req *providers.Request, marks []mark) ([]byte, error) {
	msgs := req.Messages
	w, blocksInWire := -1, 0
	for i := range msgs {
		m := &msgs[i]
		first := !joinsPrevious(msgs, i)
		last := i == len(msgs)-1 || !joinsPrevious(msgs, i+1)
		if first {
			w++
			if w > 0 {
				body = append(body, ',')
			}
			role := "user"
			if m.Role == providers.RoleAssistant {
				role = "assistant"
			}
			body = append(body, `{"role":"`+role+`","content":[`...)
			blocksInWire = 0
		}
		if n := blockCount(m); n > 0 {
			if blocksInWire > 0 {
				body = append(body, ',')
			}
			blocksInWire += n
			var cc *mark
			if lastWithBlocks(msgs, i) {
				cc = markAt(marks, w) // the wire message's last block carries it
			}
			var err error
			if body, err = appendBlocks(body, req.Encoded, m, cc); err != nil {
				return nil, err
			}
		}
		if last {
			body = append(body, "]}"...)
		}
	}
	return body, nil
}

// lastWithBlocks reports whether no message after message i in its wire message
// has blocks.
func lastWithBlocks(msgs []providers.Message, i int) bool {
	for j := i + 1; j < len(msgs) && joinsPrevious(msgs, j); j++ {
		if blockCount(&msgs[j]) > 0 {
			return false
		}
	}
	return true
}

// markAt returns the mark on wire message w, nil when there is none.
func markAt(marks []mark, w int) *mark {
	for i := range marks {
		if marks[i].pos == w {
			return &marks[i]
		}
	}
	return nil
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

// messageBlocks is the blocks buildMessages makes of m.
func messageBlocks(m *providers.Message) []wireBlock {
	switch m.Role {
	case providers.RoleAssistant:
		return assistantBlocks(*m)
	case providers.RoleTool:
		return []wireBlock{toolResultBlock(*m)}
	}
	return []wireBlock{{Type: "text", Text: m.Text}}
}

// appendBlocks appends the blocks of one neutral message, comma-separated; cc,
// when not nil, is the breakpoint on its last block. The variant is that
// breakpoint: a breakpoint that moves changes only the bytes of the messages it
// leaves and reaches.
func appendBlocks(body []byte, cache *providers.EncodedCache, m *providers.Message,
	cc *mark) ([]byte, error) {
	variant := ""
	if cc != nil {
		variant = "cc:" + cc.control().TTL
	}
	if data, ok := cache.Get(providerName, m, variant); ok {
		return append(body, data...), nil
	}
	blocks := messageBlocks(m)
	if cc != nil {
		blocks[len(blocks)-1].CacheControl = cc.control()
	}
	var data []byte
	for j := range blocks {
		b, err := encodeValue(&blocks[j])
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

// encodeValue encodes one part of a request as encode encodes it within the
// request.
func encodeValue(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
