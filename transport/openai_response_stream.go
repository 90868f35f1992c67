package transport

import (
	"strings"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// eventWriter sends one event of the Responses API's stream: over SSE as a named
// event, over the WebSocket mode as one message.
type eventWriter interface {
	send(typ string, ev map[string]any)
}

// responseStream writes an answer as the Responses API's stream events:
// response.created and response.in_progress, then for the message and each
// function call an output_item.added, its deltas and its done events, and a
// terminal response.completed, response.incomplete or response.failed carrying
// the whole response. Every event has the next sequence_number.
type responseStream struct {
	out       eventWriter
	seq       int
	resp      *responseObject
	sessionID string
	answerSeq uint64 // the seq the answer will have, which its item IDs use

	next  int // the output index of the next item
	msg   *streamItem
	calls []*streamItem
}

// streamItem is an output item being streamed.
type streamItem struct {
	index int
	id    string
	name  string
	call  providers.ToolCall // function calls: ID, Name and arguments so far
	text  strings.Builder    // messages: text so far
	done  bool
}

func newResponseStream(out eventWriter, resp *responseObject, sessionID string,
	answerSeq uint64) *responseStream {
	return &responseStream{out: out, resp: resp, sessionID: sessionID, answerSeq: answerSeq}
}

func (s *responseStream) emit(typ string, ev map[string]any) {
	ev["type"] = typ
	ev["sequence_number"] = s.seq
	s.seq++
	s.out.send(typ, ev)
}

// start announces the response.
func (s *responseStream) start() {
	s.emit("response.created", map[string]any{"response": s.resp})
	s.emit("response.in_progress", map[string]any{"response": s.resp})
}

func (s *responseStream) text(piece string) {
	if s.msg == nil {
		s.msg = &streamItem{index: s.next, id: itemID("msg", s.sessionID, s.answerSeq, 0)}
		s.next++
		s.emit("response.output_item.added", map[string]any{"output_index": s.msg.index,
			"item": messageItem{ID: s.msg.id, Type: "message", Status: "in_progress",
				Role: "assistant", Content: []any{}}})
		s.emit("response.content_part.added", s.partEvent(newOutputText("")))
	}
	s.msg.text.WriteString(piece)
	s.emit("response.output_text.delta", map[string]any{"item_id": s.msg.id,
		"output_index": s.msg.index, "content_index": 0, "delta": piece,
		"logprobs": []struct{}{}})
}

func (s *responseStream) partEvent(part outputText) map[string]any {
	return map[string]any{"item_id": s.msg.id, "output_index": s.msg.index,
		"content_index": 0, "part": part}
}

func (s *responseStream) call(d providers.Delta) {
	s.closeMessage()
	for len(s.calls) <= d.Index {
		s.calls = append(s.calls, nil)
	}
	c := s.calls[d.Index]
	if c == nil {
		c = &streamItem{index: s.next, id: itemID("fc", s.sessionID, s.answerSeq, d.Index+1),
			call: providers.ToolCall{ID: d.ID, Name: d.Name}}
		s.next++
		s.calls[d.Index] = c
		s.emit("response.output_item.added", map[string]any{"output_index": c.index,
			"item": functionCallItem{ID: c.id, Type: "function_call", Status: "in_progress",
				CallID: d.ID, Name: d.Name}})
	}
	if d.Arguments == "" {
		return
	}
	c.call.Arguments += d.Arguments
	s.emit("response.function_call_arguments.delta", map[string]any{"item_id": c.id,
		"output_index": c.index, "delta": d.Arguments})
}

// closeMessage ends the message item, if one is open.
func (s *responseStream) closeMessage() {
	m := s.msg
	if m == nil || m.done {
		return
	}
	m.done = true
	text := m.text.String()
	s.emit("response.output_text.done", map[string]any{"item_id": m.id,
		"output_index": m.index, "content_index": 0, "text": text, "logprobs": []struct{}{}})
	s.emit("response.content_part.done", s.partEvent(newOutputText(text)))
	s.emit("response.output_item.done", map[string]any{"output_index": m.index,
		"item": messageItem{ID: m.id, Type: "message", Status: "completed", Role: "assistant",
			Content: []any{newOutputText(text)}}})
}

func (s *responseStream) closeCall(c *streamItem) {
	c.done = true
	s.emit("response.function_call_arguments.done", map[string]any{"item_id": c.id,
		"output_index": c.index, "name": c.call.Name, "arguments": c.call.Arguments})
	s.emit("response.output_item.done", map[string]any{"output_index": c.index,
		"item": functionCallItem{ID: c.id, Type: "function_call", Status: "completed",
			CallID: c.call.ID, Name: c.call.Name, Arguments: c.call.Arguments}})
}

// finish sends what the stored answer e has that the deltas did not bring, closes
// the open items and ends with the terminal event.
func (s *responseStream) finish(e *session.Event) {
	if e.Status == providers.StatusComplete {
		sent, open := "", true
		if s.msg != nil {
			sent, open = s.msg.text.String(), !s.msg.done
		}
		if rest, ok := strings.CutPrefix(e.Text, sent); ok && rest != "" && open {
			s.text(rest)
		}
		s.finishCalls(e.ToolCalls)
	}
	s.closeMessage()
	for _, c := range s.calls {
		if c != nil && !c.done {
			s.closeCall(c)
		}
	}
	finishResponse(s.resp, s.sessionID, e)
	typ := "response." + s.resp.Status
	s.emit(typ, map[string]any{"response": s.resp})
}

// finishCalls sends the calls of the stored answer, or the end of their arguments,
// that the deltas did not bring.
func (s *responseStream) finishCalls(calls []providers.ToolCall) {
	for i, call := range calls {
		if i >= len(s.calls) || s.calls[i] == nil {
			s.call(providers.Delta{Index: i, ID: call.ID, Name: call.Name,
				Arguments: call.Arguments})
			continue
		}
		rest, ok := strings.CutPrefix(call.Arguments, s.calls[i].call.Arguments)
		if ok && rest != "" {
			s.call(providers.Delta{Index: i, Arguments: rest})
		}
	}
}

// fail ends the stream with an error event, for an answer that could not be
// followed.
func (s *responseStream) fail(e *apiError) {
	s.emit("error", errorEvent(e))
}

// errorEvent is the error event of the Responses stream: the error in the
// WebSocket mode's nested form, and its fields at the top level as the SSE stream
// has them.
func errorEvent(e *apiError) map[string]any {
	return map[string]any{"status": e.Status, "error": e, "code": e.Code,
		"message": e.Message, "param": e.Param}
}
