package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/stated-dev/stated/providers"
)

// doneData is the data of the event that ends a Chat Completions stream.
const doneData = "[DONE]"

// chunk is one chat.completion.chunk, or an error object sent in the stream.
type chunk struct {
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *wireUsage    `json:"usage"`
	Error   *wireError    `json:"error"`
}

type chunkChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content   string          `json:"content"`
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

type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// readStream reads a Chat Completions chunk stream up to "data: [DONE]", calling
// onDelta for each piece of the answer. On failure it returns what it assembled so
// far with Status incomplete (nil if the answer had not started) and the error.
func readStream(ctx context.Context, body io.Reader,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	events := providers.NewSSEReader(body, 0)
	d := &decoder{onDelta: onDelta, ordinal: make(map[int]int)}
	for !d.done {
		if err := ctx.Err(); err != nil {
			return d.partial(), fmt.Errorf("openai: stream: %w", err)
		}
		ev, err := events.Next()
		if err != nil {
			return d.partial(), readError(ctx, err)
		}
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
	case errors.Is(err, providers.ErrLineTooLong), errors.Is(err, ErrResponseTooLarge):
		return fmt.Errorf("openai: stream: %w", err)
	}
	return fmt.Errorf("openai: stream: %w: %w", providers.ErrStreamCut, err)
}

// decoder assembles a Response from the chunks of one stream.
type decoder struct {
	onDelta  func(providers.Delta)
	model    string
	text     strings.Builder
	calls    []providers.ToolCall // ID and Name; the arguments are in args
	args     []*strings.Builder
	ordinal  map[int]int // the wire index of a tool call -> its place in calls
	usage    providers.Usage
	reported bool
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
	if c.Usage != nil {
		d.takeUsage(c.Usage)
	}
	return nil
}

func (d *decoder) choice(ch *chunkChoice) {
	if text := ch.Delta.Content; text != "" {
		d.text.WriteString(text)
		d.emit(providers.Delta{Kind: providers.DeltaText, Text: text})
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
// which its first fragment came.
func (d *decoder) toolCall(frag *toolCallDelta) {
	n, ok := d.ordinal[frag.Index]
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

// takeUsage converts the usage of the last chunk. cached_tokens is a part of
// prompt_tokens here, so the uncached input is the difference.
func (d *decoder) takeUsage(u *wireUsage) {
	prompt := max(u.PromptTokens, 0)
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = min(max(u.PromptTokensDetails.CachedTokens, 0), prompt)
	}
	d.usage = providers.Usage{
		InputTokens:     prompt - cached,
		CacheReadTokens: cached,
		OutputTokens:    max(u.CompletionTokens, 0),
	}
	d.reported = true
}

func stopReason(reason string) providers.StopReason {
	switch reason {
	case "stop":
		return providers.StopEnd
	case "length":
		return providers.StopMaxTokens
	case "tool_calls", "function_call":
		return providers.StopToolUse
	}
	return providers.StopOther
}

// streamError is the *providers.Error of an error chunk. Server errors and
// overload or rate limit errors are temporary.
func streamError(w *wireError) error {
	e := &providers.Error{Provider: providerName, Type: w.errorType(), Message: w.Message}
	switch {
	case e.Type == "server_error",
		strings.Contains(e.Type, "overloaded"),
		strings.Contains(e.Type, "rate_limit"):
		e.Temporary = true
	}
	return e
}

func (d *decoder) emit(delta providers.Delta) {
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
