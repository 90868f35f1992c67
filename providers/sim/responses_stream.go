package sim

// responsesStream writes the events of a Responses stream, numbering them in
// sequence_number from 0 as the API does.
type responsesStream struct {
	sse *sseWriter
	seq int
}

// emit writes one event: its type is both the SSE event name and the "type"
// field, and fields are the rest of its payload.
func (rs *responsesStream) emit(kind string, fields map[string]any) {
	fields["type"] = kind
	fields["sequence_number"] = rs.seq
	rs.seq++
	rs.sse.event(kind, fields)
}

// streamResponse writes resp as the Responses API's event stream:
// response.created and response.in_progress (the response in progress, without
// output or usage); for the message, output_item.added, content_part.added,
// output_text deltas, output_text.done, content_part.done and output_item.done;
// for each function call, output_item.added, function_call_arguments deltas,
// function_call_arguments.done and output_item.done; then response.completed,
// or response.incomplete when max_output_tokens cut the answer.
func streamResponse(sse *sseWriter, resp *responseObject) {
	rs := &responsesStream{sse: sse}
	start := *resp
	start.Status, start.CompletedAt, start.IncompleteDetails = "in_progress", nil, nil
	start.Output, start.Usage = []any{}, nil
	rs.emit("response.created", map[string]any{"response": start})
	rs.emit("response.in_progress", map[string]any{"response": start})

	index := 0
	if resp.message != nil {
		rs.streamMessage(index, resp.message)
		index++
	}
	for _, c := range resp.calls {
		rs.streamCall(index, c)
		index++
	}

	end := "response.completed"
	if resp.Status == "incomplete" {
		end = "response.incomplete"
	}
	rs.emit(end, map[string]any{"response": resp})
}

func (rs *responsesStream) streamMessage(index int, m *outputMessage) {
	added := *m
	added.Status, added.Content = "in_progress", []outputText{}
	rs.emit("response.output_item.added", map[string]any{"output_index": index,
		"item": added})
	ids := func(fields map[string]any) map[string]any {
		fields["item_id"], fields["output_index"], fields["content_index"] = m.ID, index, 0
		return fields
	}
	text := m.Content[0].Text
	rs.emit("response.content_part.added", ids(map[string]any{"part": newOutputText("")}))
	for _, piece := range textPieces(text) {
		rs.sse.pace(piece)
		rs.emit("response.output_text.delta", ids(map[string]any{"delta": piece,
			"logprobs": []any{}}))
	}
	rs.emit("response.output_text.done", ids(map[string]any{"text": text,
		"logprobs": []any{}}))
	rs.emit("response.content_part.done", ids(map[string]any{"part": m.Content[0]}))
	rs.emit("response.output_item.done", map[string]any{"output_index": index, "item": m})
}

func (rs *responsesStream) streamCall(index int, c *outputCall) {
	added := *c
	added.Status, added.Arguments = "in_progress", ""
	rs.emit("response.output_item.added", map[string]any{"output_index": index,
		"item": added})
	for _, piece := range argPieces(c.Arguments) {
		rs.sse.pace(piece)
		rs.emit("response.function_call_arguments.delta", map[string]any{
			"item_id": c.ID, "output_index": index, "delta": piece})
	}
	rs.emit("response.function_call_arguments.done", map[string]any{
		"item_id": c.ID, "output_index": index, "arguments": c.Arguments})
	rs.emit("response.output_item.done", map[string]any{"output_index": index, "item": c})
}
