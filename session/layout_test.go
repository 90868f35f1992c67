package session

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
)

// logBuilder builds logs for layout tests, numbering events as appended.
type logBuilder struct{ events []Event }

func (l *logBuilder) add(e Event) *Event {
	e.Seq = uint64(len(l.events) + 1)
	if e.Tokens == 0 {
		e.Tokens = countTokens(&e)
	}
	if e.Kind == KindAssistant && e.Status == "" {
		e.Status = providers.StatusComplete
	}
	l.events = append(l.events, e)
	return &l.events[len(l.events)-1]
}

// exchange appends a user turn and its answer; with calls > 0 the answer first
// makes that many parallel tool calls, answered by results of resultWords words.
func (l *logBuilder) exchange(i, calls, resultWords int) {
	l.add(Event{Kind: KindUser, Text: fmt.Sprintf("question %d", i)})
	if calls > 0 {
		var cs []providers.ToolCall
		for c := 0; c < calls; c++ {
			cs = append(cs, providers.ToolCall{ID: fmt.Sprintf("call-%d-%d", i, c), Name: "f",
				Arguments: `{"n":1}`})
		}
		l.add(Event{Kind: KindAssistant, ToolCalls: cs})
		for _, c := range cs {
			l.add(Event{Kind: KindToolResult, ToolCallID: c.ID,
				Text: strings.Repeat(fmt.Sprintf("result %s ", c.ID), resultWords)})
		}
	}
	l.add(Event{Kind: KindAssistant, Text: fmt.Sprintf("answer %d", i)})
}

// requestPoints returns the log lengths at which a request is made: after every
// turn, never right after an answer.
func requestPoints(events []Event) []int {
	var out []int
	for end := 1; end <= len(events); end++ {
		k := events[end-1].Kind
		last := end == len(events) || events[end].Kind != KindToolResult
		if k == KindUser || k == KindToolResult && last {
			out = append(out, end)
		}
	}
	return out
}

func sonnetSettings() *Settings {
	st := &Settings{Model: "claude-sonnet-4-5", System: strings.Repeat("policy text ", 700),
		MaxTokens: 100, Tools: []providers.Tool{{Name: "f"}, {Name: "g"}}}
	st.Context = st.Context.withDefaults(DefaultContextPolicy(), st.Model)
	return st
}

func TestLayoutKeepsEveryRequestAPrefixOfTheNext(t *testing.T) {
	st := sonnetSettings()
	var l logBuilder
	for i := 0; i < 30; i++ {
		l.exchange(i, i%3, 5)
	}
	var prev *prompt
	for _, end := range requestPoints(l.events) {
		p := layout(st, l.events[:end])
		if err := checkPairing(p.req); err != nil {
			t.Fatalf("request at %d: %v", end, err)
		}
		if prev != nil {
			n := len(prev.req.Messages)
			if !reflect.DeepEqual(prev.req.Messages, p.req.Messages[:n]) {
				t.Fatalf("request at event %d changed the messages of the one before", end)
			}
			if got := prevEndIn(prev, p); got != n-1 {
				t.Fatalf("request at %d: previous end found at %d, want %d", end, got, n-1)
			}
		}
		prev = p
	}
}

// TestCachePlanNeverPlacesMoreThanFourBreakpoints lays out random logs (parallel
// calls, checkpoints, pins) request after request, as a session does, and holds
// every plan to the API's rules through the real Anthropic adapter.
func TestCachePlanNeverPlacesMoreThanFourBreakpoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 40; run++ {
		st := sonnetSettings()
		var l logBuilder
		var prev *prompt
		for i := 0; i < 25; i++ {
			l.exchange(i, rng.IntN(4)*rng.IntN(2)*3, 1+rng.IntN(200))
			if rng.IntN(6) == 0 {
				l.add(Event{Kind: KindPin, Target: uint64(1 + rng.IntN(len(l.events)))})
			}
			if rng.IntN(8) == 0 {
				through := l.events[len(l.events)-1].Seq
				l.add(Event{Kind: KindRollup, Text: "summary so far", Tokens: 3,
					Rollup: &Checkpoint{Through: through}})
			}
			l.add(Event{Kind: KindUser, Text: "next"})
			p := layout(st, l.events)
			params := cacheParams{prevEnd: -1, ttl: ttl5m, anchorTTL: ttl1h}
			if prev != nil {
				params.prevEnd = prevEndIn(prev, p)
			}
			p.req.Cache = cachePlan(p, modelInfoFor(st.Model), params)
			checkPlan(t, p, params.prevEnd)
			prev = p
			l.events = l.events[:len(l.events)-1]
		}
	}
}

// checkPlan holds one plan to the rules: at most four breakpoints, the entry the
// request reads within reach, TTLs in order (the adapter checks those two).
func checkPlan(t *testing.T, p *prompt, prevEnd int) {
	t.Helper()
	plan := p.req.Cache
	n := len(plan.Messages)
	if plan.System {
		n++
	}
	if n > maxBreakpoints {
		t.Fatalf("plan places %d breakpoints: %+v", n, plan)
	}
	if _, err := anthropic.MarshalRequest(p.req); err != nil {
		t.Fatalf("the adapter refuses the plan %+v: %v", plan, err)
	}
	if prevEnd >= 0 && !coveredWithinLookback(p, plan, prevEnd) {
		t.Fatalf("the previous entry at message %d is out of every breakpoint's reach: %+v",
			prevEnd, plan)
	}
	if err := checkPairing(p.req); err != nil {
		t.Fatal(err)
	}
}

// coveredWithinLookback reports whether a read from some breakpoint at or after
// message i, walking back at most 20 blocks, reaches the end of message i.
func coveredWithinLookback(p *prompt, plan providers.CachePlan, i int) bool {
	blockEnd := func(m int) int {
		n := 0
		for j := 0; j <= m; j++ {
			n += p.info[j].blocks
		}
		return n
	}
	for _, m := range plan.Messages {
		if m >= i && blockEnd(m)-blockEnd(i) <= lookbackBlocks {
			return true
		}
	}
	return false
}

func TestCachePlanMarksThePreviousEndBeforeALongRunOfBlocks(t *testing.T) {
	st := sonnetSettings()
	var l logBuilder
	l.exchange(0, 0, 0)
	l.exchange(1, 0, 0)
	l.add(Event{Kind: KindUser, Text: "run everything"})
	prev := layout(st, l.events)
	var calls []providers.ToolCall
	for c := 0; c < 15; c++ { // 15 tool_use and 15 tool_result blocks: 30 > 20
		calls = append(calls, providers.ToolCall{ID: fmt.Sprintf("c%d", c), Name: "f"})
	}
	l.add(Event{Kind: KindAssistant, ToolCalls: calls})
	for _, c := range calls {
		l.add(Event{Kind: KindToolResult, ToolCallID: c.ID, Text: "ok"})
	}
	p := layout(st, l.events)
	prevEnd := prevEndIn(prev, p)
	p.req.Cache = cachePlan(p, modelInfoFor(st.Model), cacheParams{prevEnd: prevEnd,
		ttl: ttl5m, anchorTTL: ttl5m})
	if prevEnd != len(prev.req.Messages)-1 {
		t.Fatalf("previous end at %d, want %d", prevEnd, len(prev.req.Messages)-1)
	}
	marked := false
	for _, m := range p.req.Cache.Messages {
		marked = marked || m == prevEnd
	}
	if !marked {
		t.Fatalf("30 blocks after the previous end and no breakpoint on it: %+v", p.req.Cache)
	}
	checkPlan(t, p, prevEnd)
}

func TestCachePlanLeavesOutBreakpointsBelowTheMinimum(t *testing.T) {
	st := &Settings{Model: "claude-haiku-4-5", System: "short", MaxTokens: 10}
	var l logBuilder
	l.exchange(0, 0, 0)
	l.add(Event{Kind: KindUser, Text: "hello"})
	p := layout(st, l.events)
	plan := cachePlan(p, modelInfoFor(st.Model), cacheParams{prevEnd: 1, ttl: ttl5m})
	if plan.System || len(plan.Messages) > 0 {
		t.Fatalf("a prompt below Haiku 4.5's 4096 tokens got breakpoints: %+v", plan)
	}
}

func TestCachePlanKeepsLongerTTLsFirst(t *testing.T) {
	st := sonnetSettings()
	var l logBuilder
	for i := 0; i < 4; i++ {
		l.exchange(i, 0, 0)
	}
	l.add(Event{Kind: KindRollup, Text: "earlier", Tokens: 1, Rollup: &Checkpoint{Through: 4}})
	l.add(Event{Kind: KindUser, Text: "go on"})
	p := layout(st, l.events)
	for _, tc := range []struct{ ttl, anchor string }{
		{ttl5m, ttl5m}, {ttl5m, ttl1h}, {ttl1h, ttl5m}, {ttl1h, ttl1h},
	} {
		p.req.Cache = cachePlan(p, modelInfoFor(st.Model), cacheParams{prevEnd: 1,
			ttl: tc.ttl, anchorTTL: tc.anchor})
		if _, err := anthropic.MarshalRequest(p.req); err != nil {
			t.Fatalf("ttl %s, anchors %s: %v", tc.ttl, tc.anchor, err)
		}
	}
}

func TestTTLFollowsThePausesBetweenTurns(t *testing.T) {
	r := rates{input: 3e-6, write5m: 3.75e-6, write1h: 6e-6, read: 0.3e-6}
	start := time.Unix(1e9, 0)
	gapsOf := func(d time.Duration, n int) *gapStats {
		g := &gapStats{}
		for i := 0; i <= n; i++ {
			g.observe(start.Add(time.Duration(i) * d))
		}
		return g
	}
	tests := []struct {
		name    string
		session *gapStats
		preset  *gapStats
		prefix  int
		fresh   int
		want    string
	}{
		{"a user who answers within a minute keeps 5-minute entries",
			gapsOf(time.Minute, 6), &gapStats{}, 20000, 300, ttl5m},
		{"a user who pauses six minutes gets hour-long entries",
			gapsOf(6*time.Minute, 3), &gapStats{}, 20000, 300, ttl1h},
		{"a new session of a preset whose users pause starts with hour-long entries",
			&gapStats{}, gapsOf(6*time.Minute, 10), 20000, 300, ttl1h},
		{"a short prompt is not worth the hour's premium",
			gapsOf(6*time.Minute, 1), &gapStats{}, 200, 3000, ttl5m},
		{"pauses past an hour lose either entry",
			gapsOf(2*time.Hour, 4), &gapStats{}, 20000, 300, ttl5m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chooseTTL(pauseShare(tt.session, tt.preset), tt.prefix, tt.fresh, r)
			if got != tt.want {
				t.Fatalf("ttl %s, want %s (share %.2f)", got, tt.want,
					pauseShare(tt.session, tt.preset))
			}
		})
	}
}

func TestOpenAIKeyIsSharedByAPresetAndShardedUnderLoad(t *testing.T) {
	a := openAIKey("tenant", "digest", "session-a", 1)
	b := openAIKey("tenant", "digest", "session-b", 1)
	if a != b {
		t.Fatalf("two sessions of one prefix got keys %q and %q", a, b)
	}
	if c := openAIKey("other", "digest", "session-a", 1); c == a {
		t.Fatal("two tenants share a key")
	}
	tests := []struct{ rpm, want int }{{1, 1}, {15, 1}, {16, 2}, {100, 8}, {10000, 16}}
	for _, tt := range tests {
		if got := shardsFor(tt.rpm, keyRPM); got != tt.want {
			t.Fatalf("shards for %d rpm: %d, want %d", tt.rpm, got, tt.want)
		}
	}
	if got := shardsFor(10000, -1); got != 1 {
		t.Fatalf("sharding turned off: %d shards", got)
	}
	seen := map[string]bool{}
	for i := 0; i < 64; i++ {
		seen[openAIKey("tenant", "digest", fmt.Sprint("s", i), 4)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("64 sessions over 4 shards used %d keys", len(seen))
	}
}
