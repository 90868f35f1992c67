package session

import (
	"context"
	"errors"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// history is a conversation a client brings along: a question, a tool call, its
// result and an answer.
func history() []Item {
	return []Item{
		{Kind: KindUser, TurnID: "h1", Text: "weather?"},
		{Kind: KindAssistant, ToolCalls: []providers.ToolCall{
			{ID: "c1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Kind: KindToolResult, TurnID: "h2", ToolCallID: "c1", Text: "18C"},
		{Kind: KindAssistant, Text: "It is 18C."},
	}
}

func TestOpenWithImportsHistoryAndAnswersTheNewTurn(t *testing.T) {
	h := newHarness(t)
	items := append(history(), Item{Kind: KindUser, TurnID: "u1", Text: "and tomorrow?"})
	s, ext, err := h.mgr.OpenWith(context.Background(), "t1", Settings{}, items, true)
	if err != nil {
		t.Fatal(err)
	}
	if ext.LastSeq != 5 || !ext.Answering {
		t.Fatalf("extended %+v, want last seq 5 and an answer running", ext)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 5)
	rec.waitAnswers(t, 1)
	req := h.prov.lastRequest()
	if len(req.Messages) != 5 || req.Messages[1].ToolCalls[0].ID != "c1" ||
		req.Messages[4].Text != "and tomorrow?" {
		t.Fatalf("the provider did not see the imported history: %+v", req.Messages)
	}
	if h.prov.calls() != 1 {
		t.Fatalf("the imported answers were answered again: %d calls", h.prov.calls())
	}
}

func TestExtendRefusesWhatWouldBreakTheLog(t *testing.T) {
	h := newHarness(t)
	s, _, err := h.mgr.OpenWith(context.Background(), "t1", Settings{}, history(), false)
	if err != nil {
		t.Fatal(err)
	}
	user := func(id, text string) Item { return Item{Kind: KindUser, TurnID: id, Text: text} }
	for _, tc := range []struct {
		name   string
		after  uint64
		items  []Item
		answer bool
		want   error
	}{
		{"a log that moved past the expected seq", 3, []Item{user("u1", "x")}, true, ErrMoved},
		{"a result for no waiting call", AnySeq, []Item{{Kind: KindToolResult,
			TurnID: "r9", ToolCallID: "c9", Text: "x"}}, true, ErrUnknownToolCall},
		{"an answer asked for after an answer", AnySeq, []Item{{Kind: KindAssistant,
			Text: "more"}}, true, ErrInvalid},
		{"calls left without results", AnySeq, []Item{user("u2", "x"), {Kind: KindAssistant,
			ToolCalls: []providers.ToolCall{{ID: "c2", Name: "f", Arguments: "{}"}}}},
			true, ErrToolResultsPending},
		{"a turn ID reused for other text", AnySeq, []Item{user("h1", "other")}, true,
			ErrTurnIDConflict},
		{"an empty batch", AnySeq, nil, false, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Extend(context.Background(), tc.after, tc.items,
				tc.answer); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := len(s.History(0)); got != 4 {
				t.Fatalf("a refused batch changed the log: %d events", got)
			}
		})
	}
}

func TestExtendOfTheSameTurnsIsADuplicate(t *testing.T) {
	h := newHarness(t)
	s, _, err := h.mgr.OpenWith(context.Background(), "t1", Settings{}, history(), false)
	if err != nil {
		t.Fatal(err)
	}
	turn := []Item{{Kind: KindUser, TurnID: "u1", Text: "again?"}}
	first, err := s.Extend(context.Background(), 4, turn, true)
	if err != nil || !first.Answering {
		t.Fatalf("first extend: %+v %v", first, err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 5)
	rec.waitAnswers(t, 1)

	again, err := s.Extend(context.Background(), 4, turn, true)
	if err != nil || !again.Duplicate || again.LastSeq != 5 || again.Answering {
		t.Fatalf("repeated extend: %+v %v", again, err)
	}
	if h.prov.calls() != 1 {
		t.Fatalf("a duplicate ran the model again: %d calls", h.prov.calls())
	}
}

func TestOpenWithRefusesBeforeCreatingASession(t *testing.T) {
	h := newHarness(t)
	bad := []Item{{Kind: KindToolResult, TurnID: "r1", ToolCallID: "c1", Text: "x"}}
	if _, _, err := h.mgr.OpenWith(context.Background(), "t1", Settings{}, bad,
		true); !errors.Is(err, ErrUnknownToolCall) {
		t.Fatalf("got %v, want ErrUnknownToolCall", err)
	}
	if n := h.mgr.LiveSessions(); n != 0 {
		t.Fatalf("a refused OpenWith left %d sessions", n)
	}
}
