package session

import (
	"testing"

	"github.com/stated-dev/stated/providers"
)

func TestRelayBuildsToolCallArgumentsPieceByPiece(t *testing.T) {
	rec := &recorder{}
	s := &Session{partial: &Partial{Seq: 7}, subs: map[Subscriber]struct{}{rec: {}}}
	var text answerText
	pieces := []providers.Delta{
		{Kind: providers.DeltaToolCall, Index: 0, ID: "c1", Name: "lookup", Arguments: `{"id"`},
		{Kind: providers.DeltaToolCall, Index: 1, ID: "c2", Name: "cancel", Arguments: `{}`},
		{Kind: providers.DeltaToolCall, Index: 0, Arguments: `:"7"`},
		{Kind: providers.DeltaToolCall, Index: 0, Arguments: `}`},
	}
	var snapshot string // the first call's arguments as a catch-up saw them
	for i, d := range pieces {
		s.relay(7, d, &text)
		if i == 0 {
			snapshot = s.partial.ToolCalls[0].Arguments
		}
	}

	calls := s.partial.ToolCalls
	if len(calls) != 2 || calls[0].Arguments != `{"id":"7"}` || calls[1].Arguments != `{}` ||
		calls[0].ID != "c1" || calls[1].Name != "cancel" {
		t.Fatalf("partial tool calls %+v", calls)
	}
	if snapshot != `{"id"` {
		t.Fatalf("a snapshot taken after the first piece reads %q", snapshot)
	}
	var offsets []int
	for _, n := range rec.snapshot() {
		offsets = append(offsets, n.Offset)
	}
	if want := []int{0, 0, 5, 9}; len(offsets) != 4 || offsets[0] != want[0] ||
		offsets[1] != want[1] || offsets[2] != want[2] || offsets[3] != want[3] {
		t.Fatalf("delta offsets %v, want %v", offsets, want)
	}
}
