package transport

import (
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// frameOf translates a session note into the frame the client receives.
func frameOf(n session.Note) *wire.ServerFrame {
	switch n.Kind {
	case session.NoteSubscribed:
		r := n.Resume
		return &wire.ServerFrame{
			Type: wire.TypeSession, Seq: r.LastSeq, SessionID: r.ID, Epoch: r.Epoch,
			Snapshot: r.Snapshot, Missed: r.Missed, Model: r.Settings.Model,
			MaxTokens: r.Settings.MaxTokens, Preset: r.Settings.Preset,
			PresetVersion: r.Settings.PresetVersion,
		}
	case session.NoteAck:
		return &wire.ServerFrame{
			Type: wire.TypeAck, Seq: n.Event.Seq, TurnID: n.Event.TurnID, Duplicate: n.Duplicate,
		}
	case session.NoteEvent:
		return &wire.ServerFrame{Type: wire.TypeEvent, Seq: n.Event.Seq, Event: eventToWire(n.Event)}
	case session.NoteDelta:
		f := &wire.ServerFrame{Type: wire.TypeDelta, Seq: n.Seq, Offset: n.Offset}
		if n.Delta.Kind == providers.DeltaToolCall {
			f.ToolCall = &wire.DeltaCall{Index: n.Delta.Index, ID: n.Delta.ID,
				Name: n.Delta.Name, Arguments: n.Delta.Arguments}
		} else {
			f.Text = n.Delta.Text
		}
		return f
	case session.NotePartial:
		return &wire.ServerFrame{Type: wire.TypePartial, Seq: n.Seq, Text: n.Partial.Text,
			ToolCalls: callsToWire(n.Partial.ToolCalls)}
	default:
		return &wire.ServerFrame{Type: wire.TypeError, Code: wire.CodeInternal,
			Message: "unknown note", Retry: true}
	}
}

func eventToWire(e *session.Event) *wire.Event {
	w := &wire.Event{
		Seq: e.Seq, Kind: string(e.Kind), Time: e.Time.Format(time.RFC3339Nano),
		TurnID: e.TurnID, Text: e.Text, ToolCalls: callsToWire(e.ToolCalls),
		ToolCallID: e.ToolCallID, IsError: e.IsError, Tokens: e.Tokens,
		Model: e.Model, Status: string(e.Status), StopReason: string(e.StopReason),
		UsageEstimate: e.UsageEstimate, CostUSD: e.CostUSD, ErrorCode: e.ErrorCode,
	}
	if u := e.Usage; u != nil {
		w.Usage = &wire.Usage{
			InputTokens: u.InputTokens, CacheWrite5mTokens: u.CacheWrite5mTokens,
			CacheWrite1hTokens: u.CacheWrite1hTokens, CacheReadTokens: u.CacheReadTokens,
			OutputTokens: u.OutputTokens,
		}
	}
	if t := e.Timing; t != nil {
		w.Timing = &wire.Timing{AddedMS: t.AddedMS, FirstTokenMS: t.FirstTokenMS,
			TotalMS: t.TotalMS}
	}
	savingsToWire(e, w)
	finopsToWire(e, w)
	return w
}

func callsToWire(calls []providers.ToolCall) []wire.ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]wire.ToolCall, len(calls))
	for i, c := range calls {
		out[i] = wire.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments}
	}
	return out
}

func toolsFromWire(tools []wire.Tool) []providers.Tool {
	if len(tools) == 0 {
		return nil
	}
	out := make([]providers.Tool, len(tools))
	for i, t := range tools {
		out[i] = providers.Tool{Name: t.Name, Description: t.Description,
			InputSchema: t.InputSchema}
	}
	return out
}
