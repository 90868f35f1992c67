package session

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
)

var ctx = context.Background()

func TestTurnIsAcknowledgedStreamedAndStored(t *testing.T) {
	h := newHarness(t)
	s, rec := h.open(Settings{System: "be brief"})
	e, err := s.Submit(ctx, rec, userTurn("u1", "hello there"))
	if err != nil {
		t.Fatal(err)
	}
	if want := providers.CountTokens("hello there"); e.Seq != 1 || e.Tokens != want {
		t.Fatalf("stored turn: seq %d tokens %d, want seq 1 and %d", e.Seq, e.Tokens, want)
	}
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Seq != 2 || ans.Text != "answer hello there" || ans.Status != providers.StatusComplete {
		t.Fatalf("answer: %+v", ans)
	}
	if ans.Usage == nil || ans.CostUSD == 0 || ans.Timing == nil {
		t.Fatalf("answer lacks usage, cost or timing: %+v", ans)
	}

	var kinds []NoteKind
	var streamed string
	for _, n := range rec.snapshot() {
		kinds = append(kinds, n.Kind)
		if n.Kind == NoteDelta {
			if n.Offset != len(streamed) {
				t.Fatalf("delta offset %d, want %d", n.Offset, len(streamed))
			}
			streamed += n.Delta.Text
		}
	}
	if kinds[0] != NoteSubscribed || kinds[1] != NoteAck || kinds[len(kinds)-1] != NoteEvent {
		t.Fatalf("notes in order %v: want subscribed, ack, deltas, event", kinds)
	}
	if streamed != ans.Text {
		t.Fatalf("streamed %q, stored %q", streamed, ans.Text)
	}
	recs, _ := h.store.Read(ctx, s.ID(), 0, 0)
	if len(recs) != 2 {
		t.Fatalf("store holds %d records, want 2", len(recs))
	}
}

func TestRepeatedTurnIDIsNotRunTwice(t *testing.T) {
	h := newHarness(t)
	s, rec := h.open(Settings{})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "hi")); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, 1)
	e, err := s.Submit(ctx, rec, userTurn("u1", "hi"))
	if err != nil || e.Seq != 1 {
		t.Fatalf("repeat: seq %v err %v, want the original seq 1", e, err)
	}
	last := rec.snapshot()[len(rec.snapshot())-1]
	if last.Kind != NoteAck || !last.Duplicate {
		t.Fatalf("repeat answered with %+v, want a duplicate ack", last)
	}
	if _, err := s.Submit(ctx, rec, userTurn("u1", "something else")); !errors.Is(err,
		ErrTurnIDConflict) {
		t.Fatalf("reuse for another turn: %v, want ErrTurnIDConflict", err)
	}
	if h.prov.calls() != 1 {
		t.Fatalf("provider called %d times, want 1", h.prov.calls())
	}
}

func TestTurnDuringAnswerIsBusy(t *testing.T) {
	h := newHarness(t)
	h.prov.gate = make(chan struct{})
	s, rec := h.open(Settings{})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "one two three")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first delta", func() bool { return len(rec.snapshot()) >= 3 })
	if _, err := s.Submit(ctx, rec, userTurn("u2", "next")); !errors.Is(err, ErrBusy) {
		t.Fatalf("turn during answer: %v, want ErrBusy", err)
	}
	close(h.prov.gate)
	rec.waitAnswers(t, 1)
	if _, err := s.Submit(ctx, rec, userTurn("u2", "next")); err != nil {
		t.Fatalf("turn after answer: %v", err)
	}
	rec.waitAnswers(t, 2)
}

func TestToolCallsWaitForEveryResult(t *testing.T) {
	h := newHarness(t)
	h.prov.replies = []fakeReply{{calls: []providers.ToolCall{
		{ID: "c1", Name: "a", Arguments: `{"x":1}`}, {ID: "c2", Name: "b", Arguments: `{}`},
	}}}
	s, rec := h.open(Settings{Tools: []providers.Tool{{Name: "a"}, {Name: "b"}}})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "use tools")); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, 1)

	cases := []struct {
		name string
		in   Input
		want error
	}{
		{"a user turn while results are pending is refused", userTurn("u2", "hi"),
			ErrToolResultsPending},
		{"a result for an unknown call is refused", toolResult("r0", "nope", "x"),
			ErrUnknownToolCall},
		{"the first result is taken", toolResult("r1", "c1", "one"), nil},
		{"a second result for the same call is refused", toolResult("r1b", "c1", "again"),
			ErrUnknownToolCall},
	}
	for _, c := range cases {
		if _, err := s.Submit(ctx, rec, c.in); !errors.Is(err, c.want) {
			t.Fatalf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if h.prov.calls() != 1 {
		t.Fatal("the model ran before every call had its result")
	}
	if _, err := s.Submit(ctx, rec, toolResult("r2", "c2", "")); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, 2)
	req := h.prov.lastRequest()
	msgs := req.Messages
	if len(msgs) != 4 || msgs[2].ToolCallID != "c1" || msgs[3].Text != "" {
		t.Fatalf("request messages %+v: want user, assistant, two tool results", msgs)
	}
}

func TestResumeMidAnswerSeesPartialThenTheRest(t *testing.T) {
	h := newHarness(t)
	h.prov.gate = make(chan struct{})
	s, rec := h.open(Settings{})
	if _, err := s.Submit(ctx, rec, userTurn("u1", "tell me a long story")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first delta", func() bool { return len(rec.snapshot()) >= 3 })

	late := &recorder{}
	r := s.Subscribe(late, s.Info().Epoch, 0)
	if r.Snapshot || r.Missed != 1 {
		t.Fatalf("resume: %+v, want 1 missed event and no snapshot", r)
	}
	close(h.prov.gate)
	ans := late.waitAnswers(t, 1)[0]

	var text string
	var sawPartial bool
	for _, n := range late.snapshot() {
		switch n.Kind {
		case NotePartial:
			sawPartial, text = true, n.Partial.Text
		case NoteDelta:
			if n.Offset != len(text) {
				t.Fatalf("delta at offset %d after %d bytes: a gap or a repeat", n.Offset, len(text))
			}
			text += n.Delta.Text
		}
	}
	if !sawPartial || text != ans.Text {
		t.Fatalf("partial seen %v, rebuilt %q, want %q", sawPartial, text, ans.Text)
	}
}

func TestResumeWithWrongEpochGetsSnapshot(t *testing.T) {
	h := newHarness(t)
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "hi"))
	rec.waitAnswers(t, 1)

	cases := []struct {
		name    string
		epoch   uint64
		lastSeq uint64
		snap    bool
		events  int
	}{
		{"the right epoch gets what came after last_seq", 1, 1, false, 1},
		{"a wrong epoch gets the whole log", 7, 1, true, 2},
		{"a seq past the end gets the whole log", 1, 9, true, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{}
			res := s.Subscribe(r, c.epoch, c.lastSeq)
			defer s.Unsubscribe(r)
			n := 0
			for _, note := range r.snapshot() {
				if note.Kind == NoteEvent {
					n++
				}
			}
			if res.Snapshot != c.snap || n != c.events {
				t.Fatalf("snapshot %v with %d events, want %v with %d", res.Snapshot, n,
					c.snap, c.events)
			}
		})
	}
}

func TestRestartKeepsLogTurnIDsAndPendingCalls(t *testing.T) {
	h := newHarness(t)
	h.prov.replies = []fakeReply{{calls: []providers.ToolCall{{ID: "c1", Name: "a"}}}}
	s, rec := h.open(Settings{Tools: []providers.Tool{{Name: "a"}}})
	s.Submit(ctx, rec, userTurn("u1", "go"))
	rec.waitAnswers(t, 1)
	id := s.ID()

	h.restart()
	s2, err := h.mgr.Get(ctx, "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Submit(ctx, nil, userTurn("u1", "go")); err != nil {
		t.Fatalf("repeated turn after restart: %v", err)
	}
	if _, err := s2.Submit(ctx, nil, userTurn("u2", "x")); !errors.Is(err, ErrToolResultsPending) {
		t.Fatalf("pending call lost in restart: %v", err)
	}
	if _, err := h.mgr.Get(ctx, "other-tenant", id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's get: %v, want ErrNotFound", err)
	}
	if h.prov.calls() != 1 {
		t.Fatalf("provider called %d times, want 1", h.prov.calls())
	}
}

func TestTurnInterruptedByRestartIsAnsweredOnLoad(t *testing.T) {
	h := newHarness(t)
	s, _ := h.open(Settings{})
	// Store a turn without answering it, as a process killed mid-answer leaves it.
	s.mu.Lock()
	e := Event{Kind: KindUser, TurnID: "u1", Text: "are you there"}
	if _, err := s.appendLocked(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()

	h.restart()
	s2, err := h.mgr.Get(ctx, "t1", s.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the interrupted answer", func() bool { return len(s2.History(0)) == 2 })
	if got := s2.History(1)[0]; got.Kind != KindAssistant || got.Text != "answer are you there" {
		t.Fatalf("answer after load: %+v", got)
	}
}

func TestFailedAnswerIsStoredAndLeftOutOfTheNextRequest(t *testing.T) {
	h := newHarness(t)
	h.prov.replies = []fakeReply{{early: true, err: &providers.Error{Provider: "fake",
		Status: 529, Type: "overloaded_error", Temporary: true}}}
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "first"))
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Status != StatusFailed || ans.ErrorCode != "provider_unavailable" {
		t.Fatalf("failed answer stored as %+v", ans)
	}
	if _, err := s.Submit(ctx, rec, userTurn("u2", "second")); err != nil {
		t.Fatal(err)
	}
	rec.waitAnswers(t, 2)
	msgs := h.prov.lastRequest().Messages
	if len(msgs) != 1 || msgs[0].Text != "first\n\nsecond" {
		t.Fatalf("request after a failed answer: %+v, want the user turns merged", msgs)
	}
}

func TestCutStreamKeepsTextAndEstimatesUsage(t *testing.T) {
	h := newHarness(t)
	h.prov.replies = []fakeReply{{text: "half an answer", err: providers.ErrStreamCut}}
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "go"))
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Status != providers.StatusIncomplete || ans.Text != "half an answer" ||
		!ans.UsageEstimate || ans.Usage.InputTokens == 0 || ans.Usage.OutputTokens == 0 {
		t.Fatalf("cut answer stored as %+v usage %+v", ans, ans.Usage)
	}
	if err := s.Retry(ctx); err != nil {
		t.Fatalf("retry after a cut answer: %v", err)
	}
	rec.waitAnswers(t, 2)
	if err := s.Retry(ctx); !errors.Is(err, ErrNothingToAnswer) {
		t.Fatalf("retry after a complete answer: %v", err)
	}
}

func TestEmptyAnswerDoesNotBreakTheNextTurn(t *testing.T) {
	h := newHarness(t)
	h.prov.replies = []fakeReply{{text: ""}}
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "say nothing"))
	if ans := rec.waitAnswers(t, 1)[0]; ans.ErrorCode != "empty_answer" {
		t.Fatalf("empty answer stored as %+v", ans)
	}
	s.Submit(ctx, rec, userTurn("u2", "now say something"))
	rec.waitAnswers(t, 2)
	for _, m := range h.prov.lastRequest().Messages {
		if m.Role == providers.RoleAssistant && m.Text == "" && len(m.ToolCalls) == 0 {
			t.Fatal("an empty assistant message was sent to the provider")
		}
	}
}

func TestBadInputIsRefusedWithATypedError(t *testing.T) {
	h := newHarness(t)
	s, rec := h.open(Settings{})
	cases := []struct {
		name string
		in   Input
		want error
	}{
		{"an empty turn", userTurn("a", "  \n"), ErrEmptyTurn},
		{"a turn without an id", userTurn("", "hi"), ErrInvalid},
		{"text over the limit", userTurn("b", strings.Repeat("x", 600<<10)), ErrInvalid},
		{"text that is not UTF-8", userTurn("c", "\xff\xfe"), ErrInvalid},
		{"a tool result without a call id", toolResult("d", "", "x"), ErrInvalid},
		{"an unknown kind", Input{Kind: "assistant", TurnID: "e", Text: "x"}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Submit(ctx, rec, c.in); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := s.Submit(ctx, rec, userTurn("f", "still usable")); err != nil {
		t.Fatalf("session unusable after bad input: %v", err)
	}
}

func TestSettingsAreValidated(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name string
		st   Settings
	}{
		{"a tool with a bad name", Settings{Tools: []providers.Tool{{Name: "no spaces"}}}},
		{"a tool defined twice", Settings{Tools: []providers.Tool{{Name: "a"}, {Name: "a"}}}},
		{"a schema that is not an object", Settings{Tools: []providers.Tool{{Name: "a",
			InputSchema: []byte(`[1]`)}}}},
		{"max_tokens too large", Settings{MaxTokens: 1 << 30}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := h.mgr.Open(ctx, "t1", c.st); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCloseDrainsRunningAnswers(t *testing.T) {
	h := newHarness(t)
	h.prov.gate = make(chan struct{})
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "slow answer please"))
	waitFor(t, "first delta", func() bool { return len(rec.snapshot()) >= 3 })

	closed := make(chan error)
	go func() { closed <- h.mgr.Close(ctx) }()
	if _, err := s.Submit(ctx, rec, userTurn("u2", "x")); !errors.Is(err, ErrBusy) &&
		!errors.Is(err, ErrClosed) {
		t.Fatalf("turn during shutdown: %v", err)
	}
	close(h.prov.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	recs, _ := h.store.Read(ctx, s.ID(), 0, 0)
	if len(recs) != 2 {
		t.Fatalf("after drain the log has %d events, want the answer stored too", len(recs))
	}
}

func TestCancelStopsTheAnswerAndKeepsWhatItSaid(t *testing.T) {
	h := newHarness(t)
	h.prov.gate = make(chan struct{})
	s, rec := h.open(Settings{})
	s.Submit(ctx, rec, userTurn("u1", "talk for a long time"))
	waitFor(t, "first delta", func() bool { return len(rec.snapshot()) >= 3 })
	s.Cancel()
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Status != providers.StatusAborted || ans.ErrorCode != "cancelled" || ans.Text != "answer " {
		t.Fatalf("cancelled answer stored as %+v", ans)
	}
	s.Cancel() // nothing runs: a no-op
	if err := s.Retry(ctx); err != nil {
		t.Fatalf("retry after cancel: %v", err)
	}
	close(h.prov.gate)
	if got := rec.waitAnswers(t, 2)[1]; got.Status != providers.StatusComplete {
		t.Fatalf("retried answer: %+v", got)
	}
}
