package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/stated-dev/stated/providers"
)

// responsesEvent is any event of a Responses stream; which fields are set depends
// on Type.
type responsesEvent struct {
	Type      string          `json:"type"`
	Response  *wireResponse   `json:"response"`
	Item      *outputItem     `json:"item"`
	ItemID    string          `json:"item_id"`
	Delta     string          `json:"delta"`
	Arguments string          `json:"arguments"`
	Code      json.RawMessage `json:"code"`
	Message   string          `json:"message"`
	Error     *wireError      `json:"error"`
}

// wireResponse is the response object that response.created, response.completed,
// response.incomplete and response.failed carry.
type wireResponse struct {
	Model             string     `json:"model"`
	Usage             *respUsage `json:"usage"`
	Error             *wireError `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
}

// outputItem is an item of the answer: a message (Content) or a function_call.
type outputItem struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Content   []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	} `json:"content"`
}

// respUsage is the usage object: input_tokens counts every prompt token, cached
// and written ones included.
type respUsage struct {
	InputTokens        int `json:"input_tokens"`
	OutputTokens       int `json:"output_tokens"`
	InputTokensDetails *struct {
		CachedTokens     int `json:"cached_tokens"`
		CacheWriteTokens int `json:"cache_write_tokens"`
	} `json:"input_tokens_details"`
}

// readResponsesStream reads a Responses event stream up to response.completed or
// response.incomplete, calling onDelta for each piece of the answer. On failure it
// returns what it assembled so far with Status incomplete (nil if no output item
// had arrived) and the error.
func readResponsesStream(ctx context.Context, body io.Reader,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	events := providers.NewSSEReader(body, 0)
	d := &responsesDecoder{decoder: decoder{onDelta: onDelta}, items: make(map[string]int),
		streamed: make(map[string]bool)}
	for !d.done {
		if err := ctx.Err(); err != nil {
			return d.partial(), fmt.Errorf("openai: stream: %w", err)
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

// responsesDecoder assembles a Response from the events of one stream, in the
// decoder's fields.
type responsesDecoder struct {
	decoder
	items    map[string]int  // function call item ID -> its place in d.calls
	streamed map[string]bool // output item IDs that sent text or argument deltas
}

// handle applies one event. It returns a *providers.Error for response.failed and
// error events and an error matching providers.ErrBadStream for an event it
// cannot read.
func (d *responsesDecoder) handle(ev providers.SSEEvent) error {
	if ev.Data == doneData {
		return nil // not sent by the API, but harmless; the end is response.completed
	}
	var e responsesEvent
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		return fmt.Errorf("openai: decode %q event: %w: %w", ev.Event, providers.ErrBadStream, err)
	}
	kind := e.Type
	if kind == "" {
		kind = ev.Event
	}

	switch kind {
	case "response.created", "response.in_progress":
		d.takeResponse(e.Response)
	case "response.output_item.added":
		d.itemAdded(e.Item)
	case "response.output_text.delta", "response.refusal.delta":
		d.textDelta(e.ItemID, e.Delta, kind == "response.refusal.delta")
	case "response.function_call_arguments.delta":
		return d.argumentsDelta(e.ItemID, e.Delta)
	case "response.function_call_arguments.done":
		d.argumentsDone(e.ItemID, e.Arguments)
	case "response.output_item.done":
		d.itemDone(e.Item)
	case "response.completed", "response.incomplete":
		d.finish(e.Response)
	case "response.failed":
		d.takeResponse(e.Response)
		return failedError(e.Response)
	case "error":
		return eventError(&e)
	}
	// Reasoning, content part, annotation and events the API adds later change
	// nothing in the neutral answer.
	return nil
}

// takeResponse keeps the model and any usage of a response object.
func (d *responsesDecoder) takeResponse(r *wireResponse) {
	if r == nil {
		return
	}
	if r.Model != "" {
		d.model = r.Model
	}
	if u := r.Usage; u != nil {
		prompt := max(u.InputTokens, 0)
		cached, written := 0, 0
		if det := u.InputTokensDetails; det != nil {
			cached = min(max(det.CachedTokens, 0), prompt)
			written = min(max(det.CacheWriteTokens, 0), prompt-cached)
		}
		d.usage = providers.Usage{
			InputTokens:        prompt - cached - written,
			CacheWrite5mTokens: written,
			CacheReadTokens:    cached,
			OutputTokens:       max(u.OutputTokens, 0),
		}
		d.reported = true
	}
}

// itemAdded starts a function call; a message item starts nothing until its text.
func (d *responsesDecoder) itemAdded(it *outputItem) {
	if it == nil {
		return
	}
	d.started = true
	if it.Type != "function_call" {
		return
	}
	d.startCall(it)
}

func (d *responsesDecoder) startCall(it *outputItem) int {
	if n, ok := d.items[it.ID]; ok && it.ID != "" {
		return n
	}
	n := len(d.calls)
	d.items[it.ID] = n
	d.calls = append(d.calls, providers.ToolCall{ID: it.CallID, Name: it.Name})
	d.args = append(d.args, new(strings.Builder))
	d.emit(providers.Delta{Kind: providers.DeltaToolCall, Index: n, ID: it.CallID,
		Name: it.Name})
	return n
}

func (d *responsesDecoder) textDelta(itemID, text string, refusal bool) {
	d.started = true
	d.streamed[itemID] = true
	if refusal {
		d.refused = true
	}
	if text != "" {
		d.text.WriteString(text)
		d.emit(providers.Delta{Kind: providers.DeltaText, Text: text})
	}
}

func (d *responsesDecoder) argumentsDelta(itemID, fragment string) error {
	n, ok := d.items[itemID]
	if !ok {
		return fmt.Errorf("openai: arguments for item %q, not a function call: %w",
			itemID, providers.ErrBadStream)
	}
	d.streamed[itemID] = true
	d.args[n].WriteString(fragment)
	if fragment != "" {
		d.emit(providers.Delta{Kind: providers.DeltaToolCall, Index: n, Arguments: fragment})
	}
	return nil
}

// argumentsDone takes the whole arguments of a call whose fragments did not come.
func (d *responsesDecoder) argumentsDone(itemID, arguments string) {
	n, ok := d.items[itemID]
	if !ok || d.streamed[itemID] || arguments == "" {
		return
	}
	d.streamed[itemID] = true
	d.args[n].WriteString(arguments)
	d.emit(providers.Delta{Kind: providers.DeltaToolCall, Index: n, Arguments: arguments})
}

// itemDone takes the whole of an item whose deltas did not come, as a server that
// does not stream an item's pieces sends it.
func (d *responsesDecoder) itemDone(it *outputItem) {
	if it == nil || d.streamed[it.ID] {
		return
	}
	d.started = true
	switch it.Type {
	case "function_call":
		d.startCall(it)
		d.argumentsDone(it.ID, it.Arguments)
	case "message":
		for _, part := range it.Content {
			d.textDelta(it.ID, part.Text, false)
			if part.Refusal != "" {
				d.textDelta(it.ID, part.Refusal, true)
			}
		}
	}
}

// finish ends the answer: response.completed, or response.incomplete when the
// output limit or the content filter cut it.
func (d *responsesDecoder) finish(r *wireResponse) {
	d.takeResponse(r)
	d.done = true
	d.stop = providers.StopEnd
	if r != nil && r.IncompleteDetails != nil {
		switch r.IncompleteDetails.Reason {
		case "max_output_tokens":
			d.stop = providers.StopMaxTokens
		case "content_filter":
			d.stop = providers.StopRefusal
		default:
			d.stop = providers.StopOther
		}
	}
}

// failedError is the *providers.Error of a response.failed event.
func failedError(r *wireResponse) error {
	e := &providers.Error{Provider: responsesProviderName, Type: "response_failed"}
	if r != nil && r.Error != nil {
		e.Type, e.Message = r.Error.errorType(), r.Error.Message
	}
	e.Temporary = temporaryType(e.Type)
	return e
}

// eventError is the *providers.Error of an error event, whose code and message are
// at the top level, or in an error object on some servers.
func eventError(e *responsesEvent) error {
	w := wireError{Code: e.Code, Message: e.Message}
	if e.Error != nil {
		w = *e.Error
	}
	pe := &providers.Error{Provider: responsesProviderName, Type: w.errorType(),
		Message: w.Message}
	pe.Temporary = temporaryType(pe.Type)
	return pe
}

// temporaryType reports whether an error type or code names a failure a retry
// can help: server errors, overload and rate limits.
func temporaryType(t string) bool {
	return t == "server_error" || strings.Contains(t, "overloaded") ||
		strings.Contains(t, "rate_limit")
}
