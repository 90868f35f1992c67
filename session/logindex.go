package session

import (
	"slices"
	"sort"

	"github.com/stated-dev/stated/providers"
)

// logIndex is what the layout, the rollup decision and the admission of a turn
// read of a session's log, kept up to date as the log grows: its units, their
// token sums, the pinned ones, the checkpoint in force and the answers. The log
// only ever grows and its events never change, so each event is read once, when
// the index first sees it, and the cost of a request does not grow with the
// length of the conversation.
//
// An index belongs to one log: sync starts it afresh when it is given another
// (a log at another address, or one shorter than what it has seen).
type logIndex struct {
	base    *Event // &events[0] of the log seen; nil before the first event
	scanned int    // events seen

	units  []unit
	cum    []int           // cum[i] is the tokens of units[:i+1]
	pinned []int           // indexes of the pinned units, ascending
	open   map[string]bool // calls of the last answer unit still taking results

	raw     int // tokens of every event, framing included
	answers int // answers with content
	rollup  int // index of the last rollup event with a checkpoint; -1: none

	view   checkpointView // the checkpoint of events[viewOf]
	viewOf int            // -1: view not built
}

func newLogIndex() *logIndex {
	return &logIndex{rollup: -1, viewOf: -1}
}

// sync brings the index up to date with events, the whole log so far.
func (x *logIndex) sync(events []Event) {
	if len(events) == 0 || x.base != nil && (x.base != &events[0] || len(events) < x.scanned) {
		*x = *newLogIndex()
	}
	if len(events) == 0 {
		return
	}
	x.base = &events[0]
	for i := x.scanned; i < len(events); i++ {
		x.add(events, i)
	}
	x.scanned = len(events)
}

// add reads events[i], the next event of the log, as unitsOf cuts units.
func (x *logIndex) add(events []Event, i int) {
	e := &events[i]
	x.raw += e.Tokens + messageFraming
	switch {
	case e.Kind == KindRollup && e.Rollup != nil:
		x.rollup = i
	case e.Kind == KindPin:
		x.pin(events, e.Target)
	}

	switch {
	case e.Kind == KindUser:
		x.units = append(x.units, unit{user: true})
		x.open = nil
	case e.Kind == KindAssistant && e.answered():
		x.answers++
		x.units = append(x.units, unit{})
		x.open = make(map[string]bool)
		for _, c := range e.completeCalls() {
			x.open[c.ID] = true
		}
	case e.Kind == KindToolResult && x.open[e.ToolCallID]:
		delete(x.open, e.ToolCallID)
	default:
		return
	}
	k := len(x.units) - 1
	u := &x.units[k]
	u.events = append(u.events, i)
	u.tokens += e.Tokens + messageFraming
	u.lastSeq = e.Seq
	if len(x.cum) <= k {
		x.cum = append(x.cum, x.tokensBefore(k))
	}
	x.cum[k] += e.Tokens + messageFraming
	if e.Pinned {
		x.markPinned(k)
	}
}

// pin marks the unit that holds the event at seq as pinned; an event of no unit
// (a failed answer) pins nothing.
func (x *logIndex) pin(events []Event, seq uint64) {
	k := sort.Search(len(x.units), func(i int) bool { return x.units[i].lastSeq >= seq })
	if k < len(x.units) && slices.Contains(x.units[k].events, int(seq)-1) &&
		int(seq)-1 < len(events) {
		x.markPinned(k)
	}
}

func (x *logIndex) markPinned(k int) {
	if x.units[k].pinned {
		return
	}
	x.units[k].pinned = true
	at, _ := slices.BinarySearch(x.pinned, k)
	x.pinned = slices.Insert(x.pinned, at, k)
}

// tokensBefore is the tokens of units[:k].
func (x *logIndex) tokensBefore(k int) int {
	if k == 0 {
		return 0
	}
	return x.cum[k-1]
}

// firstAfter is the index of the first unit that ends after seq through.
func (x *logIndex) firstAfter(through uint64) int {
	return sort.Search(len(x.units), func(i int) bool { return x.units[i].lastSeq > through })
}

// pinnedTokens is the tokens of the pinned units.
func (x *logIndex) pinnedTokens() int {
	n := 0
	for _, k := range x.pinned {
		n += x.units[k].tokens
	}
	return n
}

// checkpoint returns the checkpoint in force, as latestCheckpoint reads it,
// building its view once per rollup event.
func (x *logIndex) checkpoint(events []Event) checkpointView {
	if x.rollup < 0 {
		return checkpointView{}
	}
	if x.viewOf != x.rollup {
		x.view = latestCheckpoint(events[:x.rollup+1])
		x.viewOf = x.rollup
	}
	return x.view
}

// indexOf returns the index of events: the cache's own, brought up to date, when
// events is the log the cache has seen so far or more of it; a fresh one for
// another log or an earlier part of it (a layout of the log before the last
// answer, once after a load). Nil caches nothing.
func (c *layoutCache) indexOf(events []Event) *logIndex {
	if c == nil {
		x := newLogIndex()
		x.sync(events)
		return x
	}
	if c.index == nil {
		c.index = newLogIndex()
	}
	x := c.index
	if x.base != nil && len(events) > 0 && x.base == &events[0] && len(events) < x.scanned {
		tmp := newLogIndex()
		tmp.sync(events)
		return tmp
	}
	x.sync(events)
	return x
}

// stubTokens returns the token count of a stub, counted the first time it is
// shown. Nil counts every time.
func (c *layoutCache) stubTokens(stub string) int {
	if c == nil {
		return providers.CountTokens(stub)
	}
	if n, ok := c.stubs[stub]; ok {
		return n
	}
	if c.stubs == nil {
		c.stubs = make(map[string]int)
	}
	n := providers.CountTokens(stub)
	c.stubs[stub] = n
	return n
}
