package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers"
)

// streamEvent is any event of a Messages stream; which fields are set depends on
// Type.
type streamEvent struct {
	Type         string        `json:"type"`
	Message      *eventMessage `json:"message"`
	Index        int           `json:"index"`
	ContentBlock *eventBlock   `json:"content_block"`
	Delta        *eventDelta   `json:"delta"`
	Usage        *wireUsage    `json:"usage"`
	Error        *wireError    `json:"error"`
}

type eventMessage struct {
	Model string     `json:"model"`
	Usage *wireUsage `json:"usage"`
}

type eventBlock struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Text string `json:"text"`
}

// eventDelta is the delta of a content_block_delta (Type, Text, PartialJSON) or of
// a message_delta (StopReason).
type eventDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	OutputTokens int `json:"output_tokens"`
}

type wireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// readStream reads a Messages event stream up to message_stop, calling onDelta for
// each piece of the answer. On failure it returns what it assembled so far with
// Status incomplete (nil if the answer had not started) and the error.
func readStream(ctx context.Context, body io.Reader,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	events := providers.NewSSEReader(body, 0)
	d := &decoder{onDelta: onDelta, blocks: make(map[int]int)}
	for !d.done {
		if err := ctx.Err(); err != nil {
			return d.partial(), fmt.Errorf("anthropic: stream: %w", err)
		}
		ev, err := events.Next()
		if err != nil {
			return d.partial(), readError(ctx, err)
		}
		d.at = events.LastRead()
		if err := d.handle(ev); err != nil {
			return d.partial(), err
		}
	}
	return d.response(providers.StatusComplete), nil
}

// readError translates an error of the event reader.
func readError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("anthropic: stream: %w", ctx.Err())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("anthropic: no message_stop: %w", providers.ErrStreamCut)
	case errors.Is(err, providers.ErrLineTooLong), errors.Is(err, providers.ErrResponseTooLarge):
		return fmt.Errorf("anthropic: stream: %w", err)
	}
	return fmt.Errorf("anthropic: stream: %w: %w", providers.ErrStreamCut, err)
}

// decoder assembles a Response from the events of one stream.
type decoder struct {
	onDelta  func(providers.Delta)
	at       time.Time // when the bytes of the event being handled were read
	model    string
	text     strings.Builder
	calls    []providers.ToolCall // ID and Name; the arguments are in args
	args     []*strings.Builder
	blocks   map[int]int // content block index -> tool call ordinal
	usage    providers.Usage
	reported bool // message_start carried usage
	stop     providers.StopReason
	started  bool // an event of the answer arrived
	done     bool // message_stop arrived
}

// handle applies one event. It returns a *providers.Error for an error event and an
// error matching providers.ErrBadStream for an event it cannot read.
func (d *decoder) handle(ev providers.SSEEvent) error {
	var e streamEvent
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		return fmt.Errorf("anthropic: decode %q event: %w: %w",
			ev.Event, providers.ErrBadStream, err)
	}
	kind := e.Type
	if kind == "" {
		kind = ev.Event
	}
	switch kind {
	case "ping", "error":
	default:
		d.started = true
	}

	switch kind {
	case "message_start":
		d.messageStart(e.Message)
	case "content_block_start":
		d.blockStart(e.Index, e.ContentBlock)
	case "content_block_delta":
		return d.blockDelta(e.Index, e.Delta)
	case "message_delta":
		d.messageDelta(e.Delta, e.Usage)
	case "message_stop":
		d.done = true
	case "error":
		return streamError(e.Error)
	}
	// content_block_stop, ping and event types the API adds later change nothing.
	return nil
}

func (d *decoder) messageStart(m *eventMessage) {
	if m == nil {
		return
	}
	d.model = m.Model
	if m.Usage == nil {
		return
	}
	u := m.Usage
	d.reported = true
	d.usage.InputTokens = max(u.InputTokens, 0)
	d.usage.CacheWrite5mTokens, d.usage.CacheWrite1hTokens = cacheWrites(u)
	d.usage.CacheReadTokens = max(u.CacheReadInputTokens, 0)
	d.usage.OutputTokens = max(u.OutputTokens, 0)
}

// cacheWrites splits the cache write tokens by TTL. Without the per-TTL breakdown
// every write counts as a 5-minute write.
func cacheWrites(u *wireUsage) (fiveMinutes, oneHour int) {
	if c := u.CacheCreation; c != nil && c.Ephemeral5m+c.Ephemeral1h > 0 {
		return max(c.Ephemeral5m, 0), max(c.Ephemeral1h, 0)
	}
	return max(u.CacheCreationInputTokens, 0), 0
}

func (d *decoder) blockStart(index int, b *eventBlock) {
	if b == nil {
		return
	}
	switch b.Type {
	case "text":
		d.addText(b.Text)
	case "tool_use":
		n := len(d.calls)
		d.calls = append(d.calls, providers.ToolCall{ID: b.ID, Name: b.Name})
		d.args = append(d.args, new(strings.Builder))
		d.blocks[index] = n
		d.emit(providers.Delta{Kind: providers.DeltaToolCall, Index: n, ID: b.ID, Name: b.Name})
	}
}

func (d *decoder) blockDelta(index int, delta *eventDelta) error {
	if delta == nil {
		return nil
	}
	switch delta.Type {
	case "text_delta":
		d.addText(delta.Text)
	case "input_json_delta":
		n, ok := d.blocks[index]
		if !ok {
			return fmt.Errorf("anthropic: input_json_delta for block %d, not a tool_use: %w",
				index, providers.ErrBadStream)
		}
		d.args[n].WriteString(delta.PartialJSON)
		if delta.PartialJSON != "" {
			d.emit(providers.Delta{
				Kind: providers.DeltaToolCall, Index: n, Arguments: delta.PartialJSON,
			})
		}
	}
	// thinking, signature and citation deltas are not part of the neutral answer.
	return nil
}

func (d *decoder) addText(text string) {
	if text == "" {
		return
	}
	d.text.WriteString(text)
	d.emit(providers.Delta{Kind: providers.DeltaText, Text: text})
}

// messageDelta takes the stop reason and the usage: output_tokens is cumulative,
// and input fields, when they appear here and are not zero, replace earlier ones.
func (d *decoder) messageDelta(delta *eventDelta, u *wireUsage) {
	if delta != nil && delta.StopReason != "" {
		d.stop = stopReason(delta.StopReason)
	}
	if u == nil {
		return
	}
	d.usage.OutputTokens = max(u.OutputTokens, 0)
	if u.InputTokens > 0 {
		d.usage.InputTokens = u.InputTokens
	}
	// A delta without the per-TTL breakdown keeps the one message_start gave for
	// the same total.
	if u.CacheCreationInputTokens > 0 && (u.CacheCreation != nil ||
		u.CacheCreationInputTokens != d.usage.CacheWrite5mTokens+d.usage.CacheWrite1hTokens) {
		d.usage.CacheWrite5mTokens, d.usage.CacheWrite1hTokens = cacheWrites(u)
	}
	if u.CacheReadInputTokens > 0 {
		d.usage.CacheReadTokens = u.CacheReadInputTokens
	}
}

// stopReason maps the API's stop_reason. model_context_window_exceeded stops
// the answer for want of room, as max_tokens does.
func stopReason(reason string) providers.StopReason {
	switch reason {
	case "end_turn", "stop_sequence":
		return providers.StopEnd
	case "max_tokens", "model_context_window_exceeded":
		return providers.StopMaxTokens
	case "tool_use":
		return providers.StopToolUse
	case "refusal":
		return providers.StopRefusal
	case "pause_turn":
		return providers.StopPause
	}
	return providers.StopOther
}

// streamError is the *providers.Error of an error event. Overload, rate limit,
// timeout and internal errors are temporary, as their HTTP statuses would be.
func streamError(w *wireError) error {
	e := &providers.Error{Provider: providerName}
	if w != nil {
		e.Type, e.Message = w.Type, w.Message
	}
	switch e.Type {
	case "overloaded_error", "api_error", "rate_limit_error", "timeout_error":
		e.Temporary = true
	}
	return e
}

func (d *decoder) emit(delta providers.Delta) {
	delta.At = d.at
	if d.onDelta != nil {
		d.onDelta(delta)
	}
}

// partial is the answer so far for a failed stream, or nil if it had not started.
func (d *decoder) partial() *providers.Response {
	if !d.started {
		return nil
	}
	return d.response(providers.StatusIncomplete)
}

func (d *decoder) response(status providers.Status) *providers.Response {
	var calls []providers.ToolCall
	if len(d.calls) > 0 {
		calls = make([]providers.ToolCall, len(d.calls))
		for i, call := range d.calls {
			call.Arguments = d.args[i].String()
			calls[i] = call
		}
	}
	return &providers.Response{
		Model:         d.model,
		Text:          d.text.String(),
		ToolCalls:     calls,
		StopReason:    d.stop,
		Status:        status,
		Usage:         d.usage,
		UsageReported: d.reported,
	}
}
