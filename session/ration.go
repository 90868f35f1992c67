package session

import (
	"crypto/sha256"
	"fmt"
)

// unit is the smallest run of the log that a prompt shows or leaves out whole: a
// user turn, or an answer together with the tool results that answer its calls.
// Folding or keeping units, never parts of them, is what keeps every tool call
// with its results, parallel calls included.
type unit struct {
	events  []int // indexes into the log
	tokens  int   // local count of the unit's content
	lastSeq uint64
	pinned  bool
	user    bool // a user turn
}

// unitsOf cuts the conversational events of a log into units. Rollup and pin
// events, failed answers and tool results that answer no shown call are not part
// of any unit. A unit is pinned when any of its events is.
func unitsOf(events []Event) []unit {
	pins := pinnedSeqs(events)
	var units []unit
	var open map[string]bool // calls of the last answer unit still taking results
	for i := range events {
		e := &events[i]
		switch {
		case e.Kind == KindUser:
			units = append(units, unit{user: true})
			open = nil
		case e.Kind == KindAssistant && e.answered():
			units = append(units, unit{})
			open = make(map[string]bool)
			for _, c := range e.completeCalls() {
				open[c.ID] = true
			}
		case e.Kind == KindToolResult && open[e.ToolCallID]:
			delete(open, e.ToolCallID)
		default:
			continue
		}
		u := &units[len(units)-1]
		u.events = append(u.events, i)
		u.tokens += e.Tokens + messageFraming
		u.lastSeq = e.Seq
		u.pinned = u.pinned || pins[e.Seq]
	}
	return units
}

// pinnedSeqs returns the seqs that stay verbatim: turns submitted pinned and the
// targets of pin events.
func pinnedSeqs(events []Event) map[uint64]bool {
	pins := make(map[uint64]bool)
	for i := range events {
		e := &events[i]
		switch {
		case e.Pinned:
			pins[e.Seq] = true
		case e.Kind == KindPin:
			pins[e.Target] = true
		}
	}
	return pins
}

// shownText returns the text a prompt shows for a user turn or tool result and
// its token count: a stub when the checkpoint left the result out, or when the
// same large block is already shown earlier in the prompt; the text otherwise.
//
// A repeat in the newest turn is shown in full: the model reads a fresh result
// whole on the turn it arrives (it asked for it and acts on it); from the next
// turn on it is a stub. That costs one cache write of the repeat, and keeps the
// turn the model answers exactly as the client sent it.
func (b *promptBuilder) shownText(e *Event, what string, newest bool) (string, int) {
	if b.elided[e.Seq] {
		stub := elidedStub(e, b.calls[e.ToolCallID])
		return b.stubbed(e, stub)
	}
	if !b.policy.dedupOn() || e.Tokens < b.policy.DedupMinTokens {
		return e.Text, e.Tokens
	}
	d := b.digest(e)
	first, ok := b.shown[d]
	if ok && newest {
		return e.Text, e.Tokens
	}
	if ok {
		stub := fmt.Sprintf("[This %s repeats the one stored as event %d, shown above; "+
			"it is not sent again.]", what, first)
		return b.stubbed(e, stub)
	}
	b.shown[d] = e.Seq
	return e.Text, e.Tokens
}

// digest returns the digest of an event's text, from the cache when it has it.
func (b *promptBuilder) digest(e *Event) [32]byte {
	if b.cache == nil {
		return sha256.Sum256([]byte(e.Text))
	}
	if d, ok := b.cache.digests[e.Seq]; ok {
		return d
	}
	d := sha256.Sum256([]byte(e.Text))
	b.cache.digests[e.Seq] = d
	return d
}

// stubbed books the tokens a stub saves and returns it with its count.
func (b *promptBuilder) stubbed(e *Event, stub string) (string, int) {
	n := b.cache.stubTokens(stub)
	if e.Tokens > n {
		b.saved += e.Tokens - n
	}
	return stub, n
}

// elidedStub says what was left out and how to get it back.
func elidedStub(e *Event, tool string) string {
	if tool == "" {
		tool = "the tool"
	}
	return fmt.Sprintf("[Left out to save context: the result of %s (call %s, %d tokens), "+
		"stored as event %d of this session. Call the tool again if you need it.]",
		tool, e.ToolCallID, e.Tokens, e.Seq)
}

// rationCandidates returns the seqs of the tool results that a checkpoint may
// leave out now: shown verbatim after the checkpoint through, in no pinned unit,
// at least RationMinTokens long, and followed by at least RationAfterTurns
// answers (a turn of an agent is one answer, whatever started it).
func rationCandidates(policy *ContextPolicy, events []Event, through uint64,
	elided map[uint64]bool) []uint64 {
	return rationCandidatesIn(policy, events, unitsOf(events), through, elided)
}

// rationCandidatesIn is rationCandidates over units, the units of events.
func rationCandidatesIn(policy *ContextPolicy, events []Event, units []unit, through uint64,
	elided map[uint64]bool) []uint64 {
	if !policy.rationOn() {
		return nil
	}
	var out []uint64
	answersAfter := 0
	for i := len(units) - 1; i >= 0 && units[i].lastSeq > through; i-- {
		u := &units[i]
		for _, j := range u.events {
			e := &events[j]
			if e.Kind != KindToolResult || u.pinned || elided[e.Seq] || e.Seq <= through ||
				e.Tokens < policy.RationMinTokens || answersAfter < policy.RationAfterTurns {
				continue
			}
			out = append(out, e.Seq)
		}
		if !u.user {
			answersAfter++
		}
	}
	return out
}
