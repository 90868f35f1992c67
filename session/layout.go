package session

import (
	"fmt"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
)

// prompt is the layout of one request: the provider request, and per message
// what the cache plan and the rollup need to know of it.
//
// The prefix order is fixed: tools, system, the summary of the last checkpoint,
// the pinned turns it folded, then the turns after it in log order. Nothing in a
// prompt depends on the clock or on anything but the settings and the log, so the
// same log yields the same request bytes on any node, before and after a restart.
type prompt struct {
	req  *providers.Request
	info []msgInfo
	// head is the local token count of tools and system.
	head int
	// summary is the index of the message that holds the checkpoint's summary, or
	// -1 when there is none.
	summary int
	// foldable is the token count of the turns a rollup may still fold: those
	// after the checkpoint that are not pinned.
	foldable int
	// through is the last seq the checkpoint in force covers (0: none).
	through uint64
	// omitted counts, per lever, the tokens of the log the prompt leaves out: the
	// folded turns less their summary (rollup), left-out and repeated blocks less
	// their stubs (rationing).
	omitted map[finops.Lever]int
}

// msgInfo describes one message of a prompt.
type msgInfo struct {
	tokens  int    // local count, framing included
	blocks  int    // content blocks in Anthropic's shape
	lastSeq uint64 // the last event the message shows; 0 for the summary alone
}

// messageFraming is the local estimate of the tokens a provider wraps around one
// message of the log (role markers, block framing).
const messageFraming = 4

// tokens is the local count of the whole prompt.
func (p *prompt) tokens() int {
	n := p.head
	for _, m := range p.info {
		n += m.tokens
	}
	return n
}

// lastIndex is the index of the last message, or -1.
func (p *prompt) lastIndex() int { return len(p.req.Messages) - 1 }

// layout lays out the request for the next answer from the session's settings
// and its log: the checkpoint in force, pins, left-out tool results and repeated
// blocks applied. The cache plan is left to the caller (see cachePlan).
//
// Answers that produced nothing are left out, and turns that end up adjacent in
// one role (a failed answer between two user turns) are merged, since providers
// expect roles to alternate. A tool call and the results that answer it are shown
// or folded together, parallel calls too.
func layout(st *Settings, events []Event) *prompt {
	return layoutCached(st, events, nil)
}

// layoutCache keeps what a session's layouts compute again and again: the token
// count of its tools and system, and the digests of large blocks by seq. Settings
// and events never change, so neither does any of it. Nil caches nothing.
type layoutCache struct {
	head    int // tokens of tools and system; 0 until counted
	digests map[uint64][32]byte
	index   *logIndex              // the log read so far (logindex.go)
	encoded providers.EncodedCache // the adapter's bytes of the last request's messages
	stubs   map[string]int         // token counts of the stubs shown so far
}

func newLayoutCache() *layoutCache {
	return &layoutCache{digests: make(map[uint64][32]byte)}
}

// headTokens returns the token count of st's tools and system, counted once.
func (c *layoutCache) headTokens(st *Settings) int {
	if c == nil {
		return settingsTokens(st)
	}
	if c.head == 0 {
		c.head = settingsTokens(st)
	}
	return c.head
}

// layoutCached is layout with what it computes kept in cache.
func layoutCached(st *Settings, events []Event, cache *layoutCache) *prompt {
	idx := cache.indexOf(events)
	return layoutAt(st, events, cache, idx, idx.checkpoint(events))
}

// layoutAt lays out events, whose index is idx, with the checkpoint cp in force.
// It reads only the units the prompt shows: the pinned ones the checkpoint
// folded and those after it.
func layoutAt(st *Settings, events []Event, cache *layoutCache, idx *logIndex,
	cp checkpointView) *prompt {
	units := idx.units
	p := &prompt{
		req: &providers.Request{
			Model: st.Model, MaxTokens: st.MaxTokens, Tools: st.Tools, System: st.System,
		},
		head: cache.headTokens(st), summary: -1, through: cp.through,
		omitted: make(map[finops.Lever]int),
	}
	b := newPromptBuilder(p, st.Context, events, cp.elided)
	b.cache = cache
	if cp.summary != "" {
		b.addSummary(cp)
	}
	first := idx.firstAfter(cp.through)
	folded := idx.tokensBefore(first)
	for _, i := range idx.pinned {
		if i >= first {
			break
		}
		folded -= units[i].tokens
		b.addUnit(&units[i], i == len(units)-1)
	}
	for i := first; i < len(units); i++ {
		u := &units[i]
		b.addUnit(u, i == len(units)-1)
		if !u.pinned {
			p.foldable += u.tokens
		}
	}
	if folded > cp.summaryTokens {
		p.omitted[finops.LeverRollup] = folded - cp.summaryTokens
	}
	if b.saved > 0 {
		p.omitted[finops.LeverRationing] = b.saved
	}
	return p
}

// checkpointView is the checkpoint in force, as the layout reads it.
type checkpointView struct {
	through       uint64
	summary       string
	summaryTokens int
	elided        map[uint64]bool
}

// latestCheckpoint returns the checkpoint of the last rollup event of the log, or
// an empty one. Each checkpoint is whole, so older ones are never read.
func latestCheckpoint(events []Event) checkpointView {
	for i := len(events) - 1; i >= 0; i-- {
		e := &events[i]
		if e.Kind != KindRollup || e.Rollup == nil {
			continue
		}
		v := checkpointView{through: e.Rollup.Through, summary: e.Text,
			summaryTokens: e.Tokens, elided: make(map[uint64]bool, len(e.Rollup.Elided))}
		for _, seq := range e.Rollup.Elided {
			v.elided[seq] = true
		}
		return v
	}
	return checkpointView{}
}

// summaryText is the message that stands in for the folded turns.
func summaryText(summary string, through uint64) string {
	return fmt.Sprintf("Summary of the conversation up to event %d (the full text "+
		"stays in the session history):\n\n%s", through, summary)
}

// promptBuilder appends the messages of a prompt, merging adjacent messages of one
// role, and applies stubs to left-out and repeated blocks.
type promptBuilder struct {
	p      *prompt
	policy ContextPolicy
	events []Event
	elided map[uint64]bool
	shown  map[[32]byte]uint64 // digest of a large block -> seq that shows it
	calls  map[string]string   // tool call ID -> tool name, for stubs
	saved  int                 // tokens left out by stubs, net of the stubs
	cache  *layoutCache        // nil: compute every time
}

func newPromptBuilder(p *prompt, policy ContextPolicy, events []Event,
	elided map[uint64]bool) *promptBuilder {
	return &promptBuilder{p: p, policy: policy, events: events, elided: elided,
		shown: make(map[[32]byte]uint64), calls: make(map[string]string)}
}

func (b *promptBuilder) addSummary(cp checkpointView) {
	text := summaryText(cp.summary, cp.through)
	b.p.summary = 0
	b.push(providers.Message{Role: providers.RoleUser, Text: text, Key: summaryKey | cp.through},
		msgInfo{tokens: cp.summaryTokens + messageFraming + summaryFramingTokens, blocks: 1})
}

// summaryFramingTokens is the local count of the words summaryText puts around a
// summary.
const summaryFramingTokens = 24

// addUnit appends the messages of one unit: a user turn, or an answer and the
// tool results that answer it. newest marks the log's last unit, whose blocks
// are shown in full even when they repeat earlier ones.
func (b *promptBuilder) addUnit(u *unit, newest bool) {
	for _, i := range u.events {
		e := &b.events[i]
		switch e.Kind {
		case KindUser:
			text, tokens := b.shownText(e, "user turn", newest)
			b.push(providers.Message{Role: providers.RoleUser, Text: text},
				msgInfo{tokens: tokens + messageFraming, blocks: 1, lastSeq: e.Seq})
		case KindAssistant:
			calls := e.completeCalls()
			for _, c := range calls {
				b.calls[c.ID] = c.Name
			}
			blocks := len(calls)
			if e.Text != "" {
				blocks++
			}
			b.push(providers.Message{Role: providers.RoleAssistant, Text: e.Text,
				ToolCalls: calls},
				msgInfo{tokens: e.Tokens + messageFraming, blocks: blocks, lastSeq: e.Seq})
		case KindToolResult:
			// An empty result is sent empty: the adapters send it in the form each
			// API accepts (Anthropic: a tool_result without content).
			text, tokens := b.shownText(e, "tool result", newest)
			b.push(providers.Message{Role: providers.RoleTool, Text: text,
				ToolCallID: e.ToolCallID, IsError: e.IsError},
				msgInfo{tokens: tokens + messageFraming, blocks: 1, lastSeq: e.Seq})
		}
	}
}

// push appends m, merged into the message before it when both are user messages,
// or both answers and the first has no tool calls.
func (b *promptBuilder) push(m providers.Message, info msgInfo) {
	msgs := b.p.req.Messages
	n := len(msgs)
	if n > 0 {
		prev := &msgs[n-1]
		prevInfo := &b.p.info[n-1]
		mergeUser := prev.Role == providers.RoleUser && m.Role == providers.RoleUser
		mergeAnswer := prev.Role == providers.RoleAssistant &&
			m.Role == providers.RoleAssistant && len(prev.ToolCalls) == 0
		if mergeUser || mergeAnswer {
			prev.Text = joinText(prev.Text, m.Text)
			prev.ToolCalls = m.ToolCalls
			prevInfo.tokens += info.tokens
			prevInfo.blocks = len(prev.ToolCalls)
			if prev.Text != "" {
				prevInfo.blocks++
			}
			prevInfo.lastSeq = max(prevInfo.lastSeq, info.lastSeq)
			return
		}
	}
	if m.Key == 0 {
		m.Key = info.lastSeq // the message's content follows from its events
	}
	b.p.req.Messages = append(msgs, m)
	b.p.info = append(b.p.info, info)
}

// summaryKey marks the Key of a summary message, which shows no event of its own.
const summaryKey = 1 << 63

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}
