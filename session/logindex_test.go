package session

import (
	"reflect"
	"testing"
)

// indexTestLog is a log with everything the index reads: tool calls with
// parallel results, a failed answer, pins by flag and by event, rollups.
func indexTestLog() []Event {
	var l logBuilder
	for i := 0; i < 12; i++ {
		l.exchange(i, i%3, 40)
		switch i {
		case 3:
			l.add(Event{Kind: KindAssistant, Status: StatusFailed, ErrorCode: "provider_error"})
		case 4:
			l.add(Event{Kind: KindPin, Target: 2})
		case 6:
			l.add(Event{Kind: KindRollup, Text: "summary", Tokens: 2,
				Rollup: &Checkpoint{Through: 9, Elided: []uint64{6}}})
		case 8:
			l.add(Event{Kind: KindUser, Text: "pinned turn", Pinned: true})
			l.add(Event{Kind: KindAssistant, Text: "ok"})
		case 10:
			l.add(Event{Kind: KindRollup, Text: "summary two", Tokens: 3,
				Rollup: &Checkpoint{Through: 30}})
		}
	}
	return l.events
}

// TestLogIndexReadsTheLogAsAWholeReadWould grows the log one event at a time and
// holds the index, kept up to date incrementally, and the layout it serves to
// what reading the whole log from scratch gives at every length.
func TestLogIndexReadsTheLogAsAWholeReadWould(t *testing.T) {
	events := indexTestLog()
	st := sonnetSettings()
	cache := newLayoutCache()
	for n := 1; n <= len(events); n++ {
		log := events[:n]
		x := cache.indexOf(log)
		if want := unitsOf(log); !reflect.DeepEqual(x.units, want) && len(want) > 0 {
			t.Fatalf("%d events: units %+v, want %+v", n, x.units, want)
		}
		raw, answers := 0, 0
		for i := range log {
			raw += log[i].Tokens + messageFraming
			if log[i].answered() {
				answers++
			}
		}
		if x.raw != raw || x.answers != answers {
			t.Fatalf("%d events: raw %d answers %d, want %d %d", n, x.raw, x.answers, raw,
				answers)
		}
		if got, want := x.checkpoint(log), latestCheckpoint(log); !reflect.DeepEqual(got, want) {
			t.Fatalf("%d events: checkpoint %+v, want %+v", n, got, want)
		}
		got, want := layoutCached(st, log, cache), layout(st, log)
		if !reflect.DeepEqual(got.req.Messages, want.req.Messages) ||
			got.tokens() != want.tokens() || got.foldable != want.foldable {
			t.Fatalf("%d events: the layout differs from one laid out afresh", n)
		}
	}
}

// TestLogIndexStartsAfreshForAnotherLog gives one cache two logs in turn.
func TestLogIndexStartsAfreshForAnotherLog(t *testing.T) {
	a, b := indexTestLog(), agentLog(5)
	cache := newLayoutCache()
	cache.indexOf(a)
	if got := cache.indexOf(b).units; !reflect.DeepEqual(got, unitsOf(b)) {
		t.Fatalf("units of the second log %+v, want %+v", got, unitsOf(b))
	}
	if got := cache.indexOf(b[:3]).units; !reflect.DeepEqual(got, unitsOf(b[:3])) {
		t.Fatalf("units of an earlier part %+v", got)
	}
}
