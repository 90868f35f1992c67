package session

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// agentLog is the log of an agent session: n tool round trips with results of
// about 600 tokens, a third of them repeating an earlier one.
func agentLog(n int) []Event {
	var l logBuilder
	l.add(Event{Kind: KindUser, Text: "fix the failing test"})
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("c%d", i)
		l.add(Event{Kind: KindAssistant, ToolCalls: []providers.ToolCall{{ID: id, Name: "run",
			Arguments: `{"cmd":"go test ./..."}`}}})
		l.add(Event{Kind: KindToolResult, ToolCallID: id,
			Text: strings.Repeat(fmt.Sprintf("line %d of the output\n", i%(n/3+1)), 100)})
	}
	return l.events
}

// BenchmarkLayout lays out the next request of a 1000-event agent session, as
// every turn does, with the session's digest cache warm.
func BenchmarkLayout(b *testing.B) {
	st := sonnetSettings()
	events := agentLog(500)
	cache := newLayoutCache()
	layoutCached(st, events, cache)
	b.ReportAllocs()
	for b.Loop() {
		layoutCached(st, events, cache)
	}
}

// BenchmarkCheckpointDecision decides whether a checkpoint pays after an answer
// of the same session, as every answer does.
func BenchmarkCheckpointDecision(b *testing.B) {
	mgr, err := NewManager(Config{Model: "claude-sonnet-4-5", Cost: testPrices,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, storage.NewMemory(),
		&scriptProvider{})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close(ctx)
	s, err := mgr.Open(ctx, "t1", *sonnetSettings())
	if err != nil {
		b.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = agentLog(500)
	b.ReportAllocs()
	for b.Loop() {
		s.planCheckpointLocked(false)
	}
}
