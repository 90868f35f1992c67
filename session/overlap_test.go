package session

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// fakeHookStore is an in-memory store for unit tests whose Append first passes
// the records to hook, when set, and fails with the error hook returns.
type fakeHookStore struct {
	storage.Store
	mu   sync.Mutex
	hook func(recs []storage.Record) error
}

func (f *fakeHookStore) Append(ctx context.Context, id string, recs []storage.Record) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(recs); err != nil {
			return err
		}
	}
	return f.Store.Append(ctx, id, recs)
}

// onAppend sets the hook.
func (f *fakeHookStore) onAppend(hook func(recs []storage.Record) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// newHookHarness is a finopsHarness over a fakeHookStore.
func newHookHarness(t *testing.T, guard Guard) (*finopsHarness, *fakeHookStore) {
	t.Helper()
	store := &fakeHookStore{Store: storage.NewMemory()}
	h := &finopsHarness{harness: &harness{t: t, store: store, prov: &fakeProvider{}},
		kv: storage.NewMemoryKV(), guard: guard}
	h.restartFinops()
	return h, store
}

// untilCalled makes an append of seq wait until the provider has been called
// calls times, as it is when the answer starts before the turn is durable, and
// then fail with fail (nil: the append goes ahead).
func untilCalled(t *testing.T, h *finopsHarness, seq uint64, calls int,
	fail error) func([]storage.Record) error {
	t.Helper()
	return func(recs []storage.Record) error {
		if recs[0].Seq != seq {
			return nil
		}
		// Submit runs the append on the test's goroutine: waitFor may fail the test.
		waitFor(t, "the provider call that overlaps the append", func() bool {
			return h.prov.calls() >= calls
		})
		return fail
	}
}

// firstIndex returns the index of the first note for which match holds, or -1.
func firstIndex(notes []Note, match func(Note) bool) int {
	return slices.IndexFunc(notes, match)
}

func TestNoDeltaReachesASubscriberBeforeTheAck(t *testing.T) {
	h, store := newHookHarness(t, Guard{})
	s, other := h.open(Settings{})
	submitter := &recorder{}
	s.Subscribe(submitter, s.Info().Epoch, 0)
	// The fake provider streams its answer as soon as it is called: its deltas
	// come while the turn's append is still waiting.
	store.onAppend(untilCalled(t, h, 1, 1, nil))
	if _, err := s.Submit(ctx, submitter, userTurn("u1", "say three words")); err != nil {
		t.Fatal(err)
	}
	store.onAppend(nil)
	other.waitAnswers(t, 1)

	isDelta := func(n Note) bool { return n.Kind == NoteDelta }
	for _, c := range []struct {
		name string
		rec  *recorder
		kind NoteKind
	}{
		{"the submitter hears the ack first", submitter, NoteAck},
		{"another subscriber hears the turn first", other, NoteEvent},
	} {
		t.Run(c.name, func(t *testing.T) {
			notes := c.rec.snapshot()
			turn := firstIndex(notes, func(n Note) bool {
				return n.Kind == c.kind && n.Event.Seq == 1
			})
			delta := firstIndex(notes, isDelta)
			if turn < 0 || delta < 0 || delta < turn {
				t.Fatalf("turn note at %d, first delta at %d: want the turn first", turn, delta)
			}
		})
	}
}

// errFakeDiskFull is the failure of the fake store's append.
var errFakeDiskFull = errors.New("fake store: disk full")

func TestAFailedAppendAbandonsTheAnswerAndLeavesNoTrace(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, h *finopsHarness, s *Session, rec *recorder)
		turn  Input
	}{
		{
			name:  "a user turn",
			setup: func(*testing.T, *finopsHarness, *Session, *recorder) {},
			turn:  userTurn("u1", "hello"),
		},
		{
			name: "a tool result that completes the calls",
			setup: func(t *testing.T, h *finopsHarness, s *Session, rec *recorder) {
				h.prov.mu.Lock()
				h.prov.replies = []fakeReply{{calls: []providers.ToolCall{{ID: "c1",
					Name: "get", Arguments: `{}`}}}}
				h.prov.mu.Unlock()
				if _, err := s.Submit(ctx, rec, userTurn("u0", "use the tool")); err != nil {
					t.Fatal(err)
				}
				rec.waitAnswers(t, 1)
			},
			turn: toolResult("r1", "c1", "42"),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, store := newHookHarness(t, Guard{})
			// A Claude model and a system prompt long enough to cache: the requests
			// carry breakpoints and TTLs planned from the request before and the
			// gaps between requests, which a trace of the failed turn would move.
			s, other := h.open(Settings{Model: "claude-sonnet-4-5",
				System: strings.Repeat("Answer briefly and cite the manual. ", 400)})
			c.setup(t, h, s, other)
			before, calls := s.History(0), h.prov.calls()
			seq := uint64(len(before)) + 1
			submitter := &recorder{}
			s.Subscribe(submitter, s.Info().Epoch, uint64(len(before)))
			heard, subscribed := len(other.snapshot()), len(submitter.snapshot())

			// The answer holds after its first delta until it is cancelled (or the
			// test ends, so that a failure does not hang it).
			gate := make(chan struct{})
			t.Cleanup(func() { close(gate) })
			h.prov.mu.Lock()
			h.prov.gate = gate
			h.prov.mu.Unlock()
			store.onAppend(untilCalled(t, h, seq, calls+1, errFakeDiskFull))
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := s.Submit(sctx, submitter, c.turn); !errors.Is(err, errFakeDiskFull) {
				t.Fatalf("Submit = %v, want the store's error", err)
			}
			store.onAppend(nil)
			h.prov.mu.Lock()
			h.prov.gate = nil
			h.prov.mu.Unlock()

			assertNoTrace(t, s, before, submitter.snapshot()[subscribed:],
				other.snapshot()[heard:])
			assertBookedUnstored(t, h, s.ID(), seq+1)
			abandoned := h.prov.lastRequest()
			assertAnsweredOnce(t, s, submitter, subscribed, c.turn, seq)
			if again := h.prov.lastRequest(); !reflect.DeepEqual(again, abandoned) {
				t.Fatalf("the turn sent again was laid out as\n%+v\nnot as the first time\n%+v",
					again, abandoned)
			}
		})
	}
}

// assertNoTrace checks that a turn whose append failed left nothing behind: no
// note to anyone, the log and the pending calls as before, and no answer running.
func assertNoTrace(t *testing.T, s *Session, before []Event, submitter, other []Note) {
	t.Helper()
	if len(submitter) != 0 || len(other) != 0 {
		t.Fatalf("notes after the failed append: submitter %+v, other %+v", submitter, other)
	}
	if after := s.History(0); len(after) != len(before) {
		t.Fatalf("the log holds %d events, want the %d it held before", len(after), len(before))
	}
	s.mu.Lock()
	running, pending := s.running, len(s.pending)
	s.mu.Unlock()
	if running {
		t.Fatal("the abandoned answer still runs after Submit returned")
	}
	if want := len(pendingCalls(lastAnswer(before))); pending != want {
		t.Fatalf("%d tool calls pending, want %d as before", pending, want)
	}
}

// lastAnswer returns the last answer of events, or an empty one.
func lastAnswer(events []Event) *Event {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Kind == KindAssistant {
			return &events[i]
		}
	}
	return &Event{}
}

// assertBookedUnstored checks that the abandoned answer's cost is in the ledger
// under PurposeUnstored at the seq it was admitted at.
func assertBookedUnstored(t *testing.T, h *finopsHarness, session string, seq uint64) {
	t.Helper()
	for _, e := range h.entries(session) {
		if e.Purpose == finops.PurposeUnstored {
			if e.Seq != seq || e.CostUSD <= 0 || e.Tokens.Input == 0 {
				t.Fatalf("unstored entry %+v: want seq %d with a cost", e, seq)
			}
			return
		}
	}
	t.Fatalf("no unstored entry in %+v", h.entries(session))
}

// assertAnsweredOnce sends the turn again and checks that it is stored at seq,
// acknowledged as new (the first note rec hears after its first heard) and
// answered once.
func assertAnsweredOnce(t *testing.T, s *Session, rec *recorder, heard int, in Input,
	seq uint64) {
	t.Helper()
	stored, err := s.Submit(ctx, rec, in)
	if err != nil || stored.Seq != seq {
		t.Fatalf("the turn sent again: %v, %+v; want it stored at seq %d", err, stored, seq)
	}
	waitFor(t, "the answer", func() bool { return len(s.History(seq)) == 1 })
	ack := rec.snapshot()[heard]
	if ack.Kind != NoteAck || ack.Duplicate || ack.Event.Seq != seq {
		t.Fatalf("first note %+v: want a new ack of seq %d", ack, seq)
	}
	if ans := s.History(seq)[0]; ans.Kind != KindAssistant || ans.Status != "complete" {
		t.Fatalf("event after the turn %+v: want its complete answer", ans)
	}
}

func TestARefusalStillStoresAndAcksTheTurn(t *testing.T) {
	for _, c := range []struct {
		name    string
		guard   Guard
		limit   *finops.Limit
		want    error
		refusal func(e *Event) bool
	}{
		{
			name: "a hard budget limit",
			// The worst case of a turn is its prompt and 4096 tokens of output.
			limit: &finops.Limit{Scope: finops.ScopeTenant, Window: finops.WindowDay,
				HardUSD: 0.001},
			want:    finops.ErrBudgetExceeded,
			refusal: func(e *Event) bool { return e.ErrorCode == CodeBudgetExceeded },
		},
		{
			name:    "the runaway guard",
			guard:   Guard{MaxTurns: 1, Window: time.Hour, RepeatRun: -1},
			want:    ErrPaused,
			refusal: func(e *Event) bool { return e.Kind == KindPaused },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := newHookHarness(t, c.guard)
			s, rec := h.open(Settings{})
			if c.limit != nil {
				h.limit(*c.limit)
			} else if err := turnAndAnswer(t, s, rec, "u0", "first"); err != nil {
				t.Fatal(err)
			}
			n, calls := len(s.History(0)), h.prov.calls()
			submitter := &recorder{}
			s.Subscribe(submitter, s.Info().Epoch, uint64(n))
			subscribed := len(submitter.snapshot())

			stored, err := s.Submit(ctx, submitter, userTurn("u1", "one more"))
			if !errors.Is(err, c.want) || stored == nil || stored.Seq != uint64(n+1) {
				t.Fatalf("Submit = %v, %+v; want the turn stored and %v", err, stored, c.want)
			}
			notes := submitter.snapshot()[subscribed:]
			if len(notes) != 2 || notes[0].Kind != NoteAck || notes[0].Event.Seq != stored.Seq ||
				notes[1].Kind != NoteEvent || !c.refusal(notes[1].Event) {
				t.Fatalf("notes %+v: want the ack, then the refusal", notes)
			}
			recs, err := h.store.Read(ctx, s.ID(), uint64(n), 10)
			if err != nil || len(recs) != 2 {
				t.Fatalf("stored after the turn: %d records, %v; want the turn and the refusal",
					len(recs), err)
			}
			if h.prov.calls() != calls {
				t.Fatal("the provider was called for a refused answer")
			}
		})
	}
}
