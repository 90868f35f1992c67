package openai

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

// doneData is the data of the event that ends a Chat Completions stream.
const doneData = "[DONE]"

// chunk is one chat.completion.chunk, or an error object sent in the stream.
type chunk struct {
	Model   string          `json:"model"`
	Choices []chunkChoice   `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
	Error   *wireError      `json:"error"`
}

type chunkChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content   string          `json:"content"`
		Refusal   string          `json:"refusal"`
		ToolCalls []toolCallDelta `json:"tool_calls"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

// toolCallDelta is a fragment of tool call number Index: the first one carries the
// ID and the function name, the arguments come in pieces.
type toolCallDelta struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// readStream reads a Chat Completions chunk stream up to "data: [DONE]", calling
// onDelta for each piece of the answer and reading usage where fields say. On
// failure it returns what it assembled so far with Status incomplete (nil if the
// answer had not started) and the error.
func readStream(ctx context.Context, body io.Reader, onDelta func(providers.Delta),
	fields *UsageFields) (*providers.Response, error) {
	events := providers.NewSSEReader(body, 0)
	d := &decoder{onDelta: onDelta, ordinal: make(map[int]int), fields: fields}
	for !d.done {
		if err := ctx.Err(); err != nil {
			return d.partial(), fmt.Errorf("openai: stream: %w", err)
		}
		ev, err := events.Next()
		if err != nil {
			return d.partial(), readError(ctx, err)
		}
		d.at = events.LastRead()
		if err := d.handle(ev.Data); err != nil {
			return d.partial(), err
		}
	}
	return d.response(providers.StatusComplete), nil
}

// readError translates an error of the event reader.
func readError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("openai: stream: %w", ctx.Err())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("openai: no [DONE]: %w", providers.ErrStreamCut)
	case errors.Is(err, providers.ErrLineTooLong),
		errors.Is(err, providers.ErrResponseTooLarge):
		return fmt.Errorf("openai: stream: %w", err)
	}
	return fmt.Errorf("openai: stream: %w: %w", providers.ErrStreamCut, err)
}

// decoder assembles a Response from the chunks of one stream.
type decoder struct {
	onDelta  func(providers.Delta)
	at       time.Time // when the bytes of the event being handled were read
	model    string
	text     strings.Builder
	calls    []providers.ToolCall // ID and Name; the arguments are in args
	args     []*strings.Builder
	ordinal  map[int]int // the wire index of a tool call -> its place in calls
	fields   *UsageFields
	usage    providers.Usage
	reported bool
	refused  bool // a refusal delta arrived
	stop     providers.StopReason
	started  bool // a chunk of the answer arrived
	done     bool // [DONE] arrived
}

// handle applies the data of one event. It returns a *providers.Error for an
// error chunk and an error matching providers.ErrBadStream for data it cannot read.
func (d *decoder) handle(data string) error {
	if data == doneData {
		d.done = true
		return nil
	}
	var c chunk
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return fmt.Errorf("openai: decode chunk: %w: %w", providers.ErrBadStream, err)
	}
	if c.Error != nil {
		return streamError(c.Error)
	}

	d.started = true
	if d.model == "" {
		d.model = c.Model
	}
	for i := range c.Choices {
		// Only one choice is asked for; servers number it 0.
		if c.Choices[i].Index == 0 {
			d.choice(&c.Choices[i])
		}
	}
	if len(c.Usage) > 0 && string(c.Usage) != "null" {
		return d.takeUsage(c.Usage)
	}
	return nil
}

// choice applies the delta of the answer's choice. A refusal is the model's
// answer to the user, so its text is the answer's text.
func (d *decoder) choice(ch *chunkChoice) {
	for _, text := range []string{ch.Delta.Content, ch.Delta.Refusal} {
		if text != "" {
			d.text.WriteString(text)
			d.emit(providers.Delta{Kind: providers.DeltaText, Text: text})
		}
	}
	if ch.Delta.Refusal != "" {
		d.refused = true
	}
	for i := range ch.Delta.ToolCalls {
		d.toolCall(&ch.Delta.ToolCalls[i])
	}
	if ch.FinishReason != "" {
		d.stop = stopReason(ch.FinishReason)
	}
}

// toolCall applies one fragment. Fragments of parallel calls may interleave; the
// wire index tells them apart, and a call's place in the answer is the order in
// which its first fragment came. A fragment with a new ID at an index already
// taken starts a new call: some servers (older Ollama) send every call whole with
// index 0.
func (d *decoder) toolCall(frag *toolCallDelta) {
	n, ok := d.ordinal[frag.Index]
	if ok && frag.ID != "" && d.calls[n].ID != "" && frag.ID != d.calls[n].ID {
		ok = false
	}
	if !ok {
		n = len(d.calls)
		d.ordinal[frag.Index] = n
		d.calls = append(d.calls, providers.ToolCall{})
		d.args = append(d.args, new(strings.Builder))
	}
	delta := providers.Delta{Kind: providers.DeltaToolCall, Index: n}
	call := &d.calls[n]
	if call.ID == "" && frag.ID != "" {
		call.ID, delta.ID = frag.ID, frag.ID
	}
	if call.Name == "" && frag.Function.Name != "" {
		call.Name, delta.Name = frag.Function.Name, frag.Function.Name
	}
	d.args[n].WriteString(frag.Function.Arguments)
	delta.Arguments = frag.Function.Arguments
	if delta.ID != "" || delta.Name != "" || delta.Arguments != "" {
		d.emit(delta)
	}
}

// takeUsage converts the usage of the last chunk. The cached and the written
// tokens are parts of the prompt tokens here, so the uncached input is what is
// left of the prompt; the written ones count as 5-minute writes (OpenAI prices a
// write as input).
func (d *decoder) takeUsage(raw json.RawMessage) error {
	var u map[string]json.RawMessage
	if err := json.Unmarshal(raw, &u); err != nil {
		return fmt.Errorf("openai: decode usage: %w: %w", providers.ErrBadStream, err)
	}
	prompt := max(usageCount(u, d.fields.Prompt), 0)
	cached := min(max(usageCount(u, d.fields.Cached), 0), prompt)
	written := min(max(usageCount(u, d.fields.CacheWrite), 0), prompt-cached)
	d.usage = providers.Usage{
		InputTokens:        prompt - cached - written,
		CacheWrite5mTokens: written,
		CacheReadTokens:    cached,
		OutputTokens:       max(usageCount(u, d.fields.Completion), 0),
	}
	d.reported = true
	return nil
}

// usageCount is the number at the dotted path inside a usage object, or 0 when
// the path is empty, absent, null or not a whole number.
func usageCount(u map[string]json.RawMessage, path string) int {
	if path == "" {
		return 0
	}
	name, rest, nested := strings.Cut(path, ".")
	raw, ok := u[name]
	if !ok {
		return 0
	}
	if nested {
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) != nil {
			return 0
		}
		return usageCount(inner, rest)
	}
	var n int
	if json.Unmarshal(raw, &n) != nil {
		return 0
	}
	return n
}

// stopReason maps a finish_reason. content_filter is the provider's safety layer
// stopping the answer.
func stopReason(reason string) providers.StopReason {
	switch reason {
	case "stop":
		return providers.StopEnd
	case "length":
		return providers.StopMaxTokens
	case "tool_calls", "function_call":
		return providers.StopToolUse
	case "content_filter":
		return providers.StopRefusal
	}
	return providers.StopOther
}

// streamError is the *providers.Error of an error chunk. Server errors and
// overload or rate limit errors are temporary.
func streamError(w *wireError) error {
	e := &providers.Error{Provider: providerName, Type: w.errorType(), Message: w.Message}
	e.Temporary = temporaryType(e.Type)
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
	stop := d.stop
	switch {
	case stop == providers.StopEnd && d.refused:
		stop = providers.StopRefusal
	case stop == providers.StopEnd && len(calls) > 0:
		// Some servers (Ollama, llama.cpp in some versions) end a tool call
		// answer with "stop"; the calls still wait for results.
		stop = providers.StopToolUse
	}
	return &providers.Response{
		Model:         d.model,
		Text:          d.text.String(),
		ToolCalls:     calls,
		StopReason:    stop,
		Status:        status,
		Usage:         d.usage,
		UsageReported: d.reported,
	}
}
