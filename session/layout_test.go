package session

import (
	"reflect"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// growLog returns a log of n exchanges: user turns, answers, and every third
// answer a tool round trip with two parallel calls.
func growLog(n int) []Event {
	var log []Event
	add := func(e Event) {
		e.Seq = uint64(len(log) + 1)
		log = append(log, e)
	}
	for i := 0; i < n; i++ {
		add(Event{Kind: KindUser, Text: "question"})
		if i%3 == 2 {
			add(Event{Kind: KindAssistant, Status: providers.StatusComplete,
				ToolCalls: []providers.ToolCall{{ID: "a", Name: "f"}, {ID: "b", Name: "g"}}})
			add(Event{Kind: KindToolResult, ToolCallID: "a", Text: "1"})
			add(Event{Kind: KindToolResult, ToolCallID: "b", Text: "2"})
		}
		add(Event{Kind: KindAssistant, Status: providers.StatusComplete, Text: "answer"})
	}
	return log
}

func TestLayoutPrefixIsStableAcrossTurns(t *testing.T) {
	st := &Settings{Model: "m", System: "sys", MaxTokens: 10,
		Tools: []providers.Tool{{Name: "f"}, {Name: "g"}}}
	log := growLog(30)
	var prev *providers.Request
	for end := 1; end <= len(log); end++ {
		if log[end-1].Kind == KindAssistant {
			continue // a request is made after each turn, not after answers
		}
		req := layout(st, log[:end], "k")
		if prev != nil {
			n := len(prev.Messages)
			if !reflect.DeepEqual(prev.Messages, req.Messages[:n]) {
				t.Fatalf("request at event %d changed the messages of the one before", end)
			}
		}
		prev = req
	}
}

func TestCachePlanReadsThePreviousEntryAndWritesTheNew(t *testing.T) {
	st := &Settings{Model: "m", System: "sys"}
	log := growLog(5)
	for end := 1; end <= len(log); end++ {
		if log[end-1].Kind == KindAssistant {
			continue
		}
		req := layout(st, log[:end], "k")
		plan := req.Cache
		if !plan.System || plan.Key != "k" {
			t.Fatalf("plan %+v: want a system breakpoint and the key", plan)
		}
		if n := len(plan.Messages) + 1; n > 4 {
			t.Fatalf("plan asks for %d breakpoints; providers allow 4", n)
		}
		last := len(req.Messages) - 1
		if plan.Messages[len(plan.Messages)-1] != last {
			t.Fatalf("the last breakpoint is not at the end: %+v", plan)
		}
		if len(plan.Messages) == 2 {
			prev := plan.Messages[0]
			if req.Messages[prev+1].Role != providers.RoleAssistant {
				t.Fatalf("the first moving breakpoint (%d) is not where the previous request ended",
					prev)
			}
		}
	}
}
