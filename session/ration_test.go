package session

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// rationPolicy leaves out tool results of 500 tokens or more two answers after
// they came, and keeps the rollup off.
var rationPolicy = ContextPolicy{RollupHighTokens: -1, RationAfterTurns: 2,
	RationMinTokens: 500, DedupMinTokens: 256, SummaryModel: testSummaryModel}

func TestOldLargeToolResultsAreLeftOutWhenItPays(t *testing.T) {
	h := newSavingsHarness(t, rationPolicy)
	s, rec := h.open(Settings{System: words("sys", 1200),
		Tools: []providers.Tool{{Name: "f"}}})
	ans := h.turn(s, rec, "u0", "tools:1 read the big file")
	big := "BIGFILE " + words("line", 2000)
	ans = h.results(s, rec, ans, big)
	var bigSeq uint64
	for _, e := range s.History(0) {
		if e.Kind == KindToolResult {
			bigSeq = e.Seq
		}
	}
	for i := 0; len(rollups(s)) == 0; i++ {
		if i > 30 {
			t.Fatal("the big result was never left out")
		}
		h.turn(s, rec, fmt.Sprintf("u%d", i+1), fmt.Sprintf("next question %d", i))
	}
	cp := rollups(s)[0]
	if cp.Rollup.Reason != "ration" || len(cp.Rollup.Elided) != 1 ||
		cp.Rollup.Elided[0] != bigSeq || cp.Usage != nil {
		t.Fatalf("checkpoint %+v: want the big result left out, without a summary", cp.Rollup)
	}
	f := cp.Rollup.Figures
	if f.SavingsUSD <= f.RewriteCostUSD || f.ElidedTokens < 1500 {
		t.Fatalf("figures %+v: a checkpoint that does not pay", f)
	}

	h.turn(s, rec, "after", "and now?")
	req := h.prov.answerRequests()[len(h.prov.answerRequests())-1]
	stub := fmt.Sprintf("stored as event %d", bigSeq)
	var shown string
	for _, m := range req.Messages {
		if m.Role == providers.RoleTool {
			shown = m.Text
		}
	}
	if !strings.Contains(shown, stub) || strings.Contains(shown, "BIGFILE") {
		t.Fatalf("the old result is shown as %q, want a stub naming event %d", shown[:60], bigSeq)
	}
	if full := s.History(bigSeq - 1)[0]; full.Text != big {
		t.Fatal("the log lost the full result")
	}
	h.noViolations()
}

func TestRationingSparesRecentSmallAndPinnedResults(t *testing.T) {
	pol := rationPolicy.withDefaults(DefaultContextPolicy(), "claude-sonnet-4-5")
	build := func(pin bool) (events []Event, old, recent uint64) {
		var l logBuilder
		l.add(Event{Kind: KindUser, Text: "go"})
		l.add(Event{Kind: KindAssistant, ToolCalls: []providers.ToolCall{
			{ID: "old", Name: "f"}, {ID: "small", Name: "f"}}})
		old = l.add(Event{Kind: KindToolResult, ToolCallID: "old", Text: words("a", 800)}).Seq
		l.add(Event{Kind: KindToolResult, ToolCallID: "small", Text: "tiny"})
		if pin {
			l.add(Event{Kind: KindPin, Target: old - 1}) // the answer that made the calls
		}
		l.add(Event{Kind: KindAssistant, ToolCalls: []providers.ToolCall{{ID: "new", Name: "f"}}})
		recent = l.add(Event{Kind: KindToolResult, ToolCallID: "new", Text: words("c", 800)}).Seq
		l.add(Event{Kind: KindAssistant, Text: "done"})
		l.add(Event{Kind: KindUser, Text: "a user turn is not an answer"})
		return l.events, old, recent
	}

	events, old, _ := build(false)
	got := rationCandidates(&pol, events, 0, nil)
	if len(got) != 1 || got[0] != old {
		t.Fatalf("candidates %v: want only the large result %d, two answers old", got, old)
	}
	if got := rationCandidates(&pol, events, 0, map[uint64]bool{old: true}); len(got) != 0 {
		t.Fatalf("a result already left out is a candidate again: %v", got)
	}
	if got := rationCandidates(&pol, events, old+1, nil); len(got) != 0 {
		t.Fatalf("a result the summary covers is a candidate: %v", got)
	}
	events, _, _ = build(true)
	if got := rationCandidates(&pol, events, 0, nil); len(got) != 0 {
		t.Fatalf("candidates %v: a pin on the answer holds its results", got)
	}
}

func TestRepeatedBlocksAreSentOnce(t *testing.T) {
	st := sonnetSettings()
	st.Context.DedupMinTokens = 256
	same := "SAME " + words("row", 400)
	var l logBuilder
	l.add(Event{Kind: KindUser, Text: "tools please"})
	l.add(Event{Kind: KindAssistant, ToolCalls: []providers.ToolCall{{ID: "a", Name: "read"}}})
	first := l.add(Event{Kind: KindToolResult, ToolCallID: "a", Text: same}).Seq
	l.add(Event{Kind: KindAssistant, ToolCalls: []providers.ToolCall{{ID: "b", Name: "read"}}})
	l.add(Event{Kind: KindToolResult, ToolCallID: "b", Text: same})

	// On the turn it arrives, the repeat is shown in full.
	p := layout(st, l.events)
	if n := strings.Count(joinAll(p.req.Messages), "SAME "); n != 2 {
		t.Fatalf("newest turn: the block is shown %d times, want 2", n)
	}
	l.add(Event{Kind: KindAssistant, Text: "read it twice"})
	l.add(Event{Kind: KindUser, Text: "and?"})
	p = layout(st, l.events)
	text := joinAll(p.req.Messages)
	if n := strings.Count(text, "SAME "); n != 1 {
		t.Fatalf("the block is shown %d times, want once", n)
	}
	if !strings.Contains(text, fmt.Sprintf("repeats the one stored as event %d", first)) {
		t.Fatal("the repeat's stub does not point at the first")
	}
	if p.omitted["rationing"] < 300 {
		t.Fatalf("omitted %v: the repeat's tokens are not counted", p.omitted)
	}
	st.Context.DedupMinTokens = -1
	if n := strings.Count(joinAll(layout(st, l.events).req.Messages), "SAME "); n != 2 {
		t.Fatalf("dedup off: the block is shown %d times, want 2", n)
	}
}

func joinAll(msgs []providers.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
